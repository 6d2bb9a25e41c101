"""The node's JSON-RPC transports: HTTP POST and WebSocket on one 127.0.0.1 port (OS-assigned), as real
nodes serve them (``http://127.0.0.1:PORT`` and ``ws://127.0.0.1:PORT``).

Why not the stdlib ``http.server``: it writes a reply's headers and body in two sends with Nagle's
algorithm on, so a keep-alive client's delayed ACK stalls every request ≈ 40–50 ms (TOOLING.md). This
server is aiohttp's: TCP_NODELAY on every connection and a reply's headers and body leave in one send,
by construction. The asyncio loop only moves bytes; dispatch (which blocks: the sequencer fsyncs, the
engine proxy waits for anvil) runs on a bounded worker pool, so a slow call never stalls the loop.

WebSocket: every HTTP method, plus ``eth_subscribe`` with ``newHeads`` (each L2 block header, pushed when
the node's block tracker records the block, i.e. at soft finality) and ``logs`` (with an optional
``address`` / ``topics`` filter, per block), and ``eth_unsubscribe``. Notifications have the standard shape
``{"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": ID, "result": ...}}``.
Messages on one connection are answered in the order they arrive (so one sender's nonces stay in order);
notifications are sent in block order.

Limits (a slow or hostile client costs a coroutine, never a thread, and cannot starve the others):
``IDLE_TIMEOUT_S`` closes an idle keep-alive connection; a request body must arrive within
``READ_TIMEOUT_S`` (else 408 and the connection is closed); at most ``MAX_CONNECTIONS`` connections are
served at once (further ones are closed at once: a client sees a reset and retries), at most
``MAX_INFLIGHT`` requests are dispatched at once on ``DISPATCH_THREADS`` threads (the rest wait their
turn); a WebSocket client that lets ``MAX_OUTBOX`` messages pile up unsent is disconnected. The
sequencer bounds the lock time of one request (it takes a large batch in chunks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from harness.rollup.async_proxy import AsyncEngineProxy
from harness.rollup.rpc_dispatch import MAX_BODY_BYTES, Dispatcher, InvalidParams, _err, engine_unavailable
from harness.rollup.stage_clock import StageClock

log = logging.getLogger("rollup.rpc")

#: worker threads for blocking dispatch (bounded concurrency: further requests wait their turn)
DISPATCH_THREADS = 32
#: requests dispatched at once (over all connections); the rest wait on a semaphore, not on a thread
MAX_INFLIGHT = 256
#: connections served at once; a connection beyond it is closed at accept
MAX_CONNECTIONS = 1024
#: an idle keep-alive connection is closed after this many seconds
IDLE_TIMEOUT_S = 30.0
#: a request body must arrive within this many seconds of its headers
READ_TIMEOUT_S = 30.0
#: a WebSocket client that lets this many notifications pile up unsent is disconnected
MAX_OUTBOX = 10_000
JSON_HEADERS = {"Content-Type": "application/json"}
#: bodies up to this size that only the engine answers are proxied from the event loop (no thread hop)
LOOP_PROXY_MAX_BODY = 64 * 1024


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


class _Refuse(asyncio.Protocol):
    """The connection over the cap: reset at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()


class _WsConn:
    """One WebSocket client: an ordered outbox (replies and notifications) drained by one sender task."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.subs: dict[str, dict] = {}

    def send(self, text: str) -> None:
        if self.outbox.qsize() >= MAX_OUTBOX:
            log.warning("websocket client too slow (%d unsent messages): closing it", MAX_OUTBOX)
            self.outbox.put_nowait(None)
            return
        self.outbox.put_nowait(text)

    async def drain(self) -> None:
        while (text := await self.outbox.get()) is not None:
            if self.ws.closed:
                return
            await self.ws.send_str(text)
        await self.ws.close()


class RpcServer:
    """HTTP + WebSocket JSON-RPC on one port. ``start()`` binds and serves; ``publish_block`` feeds
    subscriptions (call it from any thread with each new block, as ``eth_getBlockByNumber(n, false)``
    returns it)."""

    def __init__(self, host: str, port: int, handlers: dict[str, Callable[[list], Any]],
                 proxy_batch: Callable[[list[tuple[str, list]]], list[dict]],
                 submit_raw: Callable[[list[bytes]], list], client_version: str,
                 tag_resolver: Callable[[str], int] | None = None, clock: StageClock | None = None,
                 engine_target: str | Path | None = None,
                 announce_intake: Callable[[], Callable[[], None]] | None = None,
                 adopt_intake: Callable[[Callable[[], None] | None], None] | None = None) -> None:
        """``engine_target``: the engine's IPC socket path or HTTP URL, for read-only calls proxied from
        the event loop (:mod:`harness.rollup.async_proxy`); None: every call goes through ``proxy_batch``
        on a dispatch thread. ``announce_intake`` / ``adopt_intake`` (the WAL's ``announce`` / ``adopt``):
        a body that carries a raw tx is announced to the WAL's group commit when it arrives, on the loop,
        and the announcement is handed to the dispatch thread that takes it, so a sync leader waits for
        requests still queued for a thread, not only for those already decoding."""
        self.announce_intake, self.adopt_intake = announce_intake, adopt_intake
        self.clock = clock if clock is not None else StageClock()
        self.engine_target = engine_target
        self.loop_proxy: AsyncEngineProxy | None = None
        self.dispatcher = Dispatcher(handlers, proxy_batch, submit_raw, client_version, tag_resolver)
        self.proxy_batch = proxy_batch
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(1024)
        self.sock.setblocking(False)
        self.pool = ThreadPoolExecutor(DISPATCH_THREADS, thread_name_prefix="rpc-dispatch")
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._conns: set[_WsConn] = set()
        self._blocks: asyncio.Queue[dict] | None = None
        self._next_sub = int.from_bytes(os.urandom(4), "big")
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._inflight: asyncio.Semaphore | None = None
        self.refused_connections = 0
        self.read_timeouts = 0

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        """The transport's counters and limits (for rollup_status)."""
        server = self._runner.server if self._runner is not None else None
        return {"connections": len(server._connections) if server is not None else 0,  # noqa: SLF001
                "websocketClients": len(self._conns), "refusedConnections": self.refused_connections,
                "readTimeouts": self.read_timeouts,
                "limits": {"maxConnections": MAX_CONNECTIONS, "maxInflight": MAX_INFLIGHT,
                           "dispatchThreads": DISPATCH_THREADS, "idleTimeout_s": IDLE_TIMEOUT_S,
                           "readTimeout_s": READ_TIMEOUT_S, "maxBodyBytes": MAX_BODY_BYTES}}

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._serve, name="rpc-server", daemon=True)
        self.thread.start()
        if not self._ready.wait(30) or self._start_error is not None:
            raise RuntimeError(f"RPC server did not start: {self._start_error}")

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._setup())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._start_error = e
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    async def _setup(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES + 1)
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=IDLE_TIMEOUT_S)
        await self._runner.setup()
        server = self._runner.server

        def protocol():  # per accepted connection: aiohttp's handler, or a reset beyond MAX_CONNECTIONS
            if len(server._connections) >= MAX_CONNECTIONS:  # noqa: SLF001 - aiohttp keeps no public count
                self.refused_connections += 1
                return _Refuse()
            return server()

        self._tcp_server = await self.loop.create_server(protocol, sock=self.sock)
        self._inflight = asyncio.Semaphore(MAX_INFLIGHT)
        if self.engine_target is not None:
            self.loop_proxy = AsyncEngineProxy(self.engine_target)
        self._blocks = asyncio.Queue()
        self._notify_task = self.loop.create_task(self._notify_blocks())

    def stop(self) -> None:
        if self.thread is None:
            self.sock.close()
            return

        async def shutdown() -> None:
            for c in list(self._conns):
                c.outbox.put_nowait(None)
            if getattr(self, "_tcp_server", None) is not None:
                self._tcp_server.close()
            if self._runner is not None:
                await self._runner.cleanup()
            if self.loop_proxy is not None:
                await self.loop_proxy.close()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        except Exception:  # noqa: BLE001 - stopping anyway
            log.exception("rpc server shutdown")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.sock.close()

    # -- HTTP ------------------------------------------------------------------------------------------------
    async def _http(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if request.method != "POST":
            return web.Response(status=405, text=_dumps(_err(None, -32600, "use HTTP POST with a JSON-RPC body, "
                                                                  "or a WebSocket")), headers=JSON_HEADERS)
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.Response(status=413, headers={**JSON_HEADERS, "Connection": "close"},
                                text=_dumps(_err(None, -32600, f"body must be 0..{MAX_BODY_BYTES} bytes")))
        try:
            body = await asyncio.wait_for(request.read(), READ_TIMEOUT_S)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, headers={**JSON_HEADERS, "Connection": "close"},
                                text=_dumps(_err(None, -32600, f"body must be 0..{MAX_BODY_BYTES} bytes")))
        except TimeoutError:
            self.read_timeouts += 1
            return web.Response(status=408, headers={**JSON_HEADERS, "Connection": "close"},
                                text=_dumps(_err(None, -32600, f"request body not received within {READ_TIMEOUT_S:g} s")))
        reply = await self._dispatch(body)
        if reply is None:  # notifications only: nothing to say
            return web.Response(status=204)
        return web.Response(status=200, text=_dumps(reply), headers=JSON_HEADERS)

    def _timed_handle(self, queued_at: float, body: bytes | str, extra: dict | None,
                      arrived: Callable[[], None] | None = None) -> Any:
        t0 = time.perf_counter()
        self.clock.record("dispatch_queue", t0 - queued_at)
        if arrived is not None:
            self.adopt_intake(arrived)
        try:
            return self.dispatcher.handle_body(body, extra)
        finally:
            if arrived is not None:
                self.adopt_intake(None)
                arrived()
            self.clock.record("dispatch_run", time.perf_counter() - t0)

    async def _dispatch(self, body: bytes | str, extra: dict | None = None) -> Any:
        if self.loop_proxy is not None and len(body) <= LOOP_PROXY_MAX_BODY:
            plan = self.dispatcher.proxy_plan(body)
            if plan is not None:
                return await self._proxy_on_loop(plan)
        arrived = None
        if self.announce_intake is not None and self.adopt_intake is not None and (
                (b"sendRaw" if isinstance(body, bytes) else "sendRaw") in body):
            arrived = self.announce_intake()
        try:
            async with self._inflight:
                return await self.loop.run_in_executor(self.pool, self._timed_handle, time.perf_counter(), body,
                                                       extra, arrived)
        except Exception as e:  # noqa: BLE001 - last line of defence
            log.exception("internal error")
            return _err(None, -32603, f"internal error: {type(e).__name__}")
        finally:
            if arrived is not None:  # a cancelled or failed hand-off: never leave it counted
                arrived()

    async def _proxy_on_loop(self, plan: Any) -> Any:
        t0 = time.perf_counter()
        try:
            async with self._inflight:
                replies = await self.loop_proxy.batch_raw([(m, p) for _id, m, p in plan.calls])
        except Exception as e:  # noqa: BLE001 - engine down (EngineUnavailable) or an unusable reply
            replies = engine_unavailable(len(plan.calls), e)
        self.clock.record("loop_proxy", time.perf_counter() - t0)
        return plan.reply(replies)

    # -- WebSocket -------------------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_BODY_BYTES, heartbeat=None)
        await ws.prepare(request)
        conn = _WsConn(ws)
        self._conns.add(conn)
        sender = self.loop.create_task(conn.drain())
        extra = {"eth_subscribe": lambda p: self._subscribe(conn, p),
                 "eth_unsubscribe": lambda p: self._unsubscribe(conn, p)}
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    reply = await self._dispatch(msg.data, extra)
                    if reply is not None:
                        conn.send(_dumps(reply))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._conns.discard(conn)
            conn.subs.clear()
            conn.outbox.put_nowait(None)
            try:
                await asyncio.wait_for(sender, 5)
            except Exception:  # noqa: BLE001 - client gone (or a timeout)
                sender.cancel()
        return ws

    def _new_sub_id(self) -> str:
        self._next_sub = (self._next_sub + 1) % 2**128
        return hex(self._next_sub)

    def _subscribe(self, conn: _WsConn, params: list) -> str:
        """(called on a dispatch thread) ``["newHeads"]`` or ``["logs", {address?, topics?}]``."""
        if not params or not isinstance(params[0], str):
            raise InvalidParams('expected ["newHeads"] or ["logs", {"address": ..., "topics": [...]}]')
        kind = params[0]
        if kind == "newHeads":
            sub: dict = {"kind": kind}
        elif kind == "logs":
            flt = params[1] if len(params) > 1 else {}
            if not isinstance(flt, dict) or not set(flt) <= {"address", "topics"}:
                raise InvalidParams("a logs subscription takes {address?, topics?}")
            sub = {"kind": kind, "filter": flt}
        else:
            raise InvalidParams(f"unsupported subscription {kind!r} (this node serves newHeads and logs)")
        sid = self._new_sub_id()
        conn.subs[sid] = sub
        return sid

    def _unsubscribe(self, conn: _WsConn, params: list) -> bool:
        if len(params) != 1 or not isinstance(params[0], str):
            raise InvalidParams("expected [subscription id]")
        return conn.subs.pop(params[0], None) is not None

    # -- subscriptions ---------------------------------------------------------------------------------------
    def publish_block(self, block: dict) -> None:
        """Queue a new block for ``newHeads`` / ``logs`` subscribers (thread-safe, never blocks)."""
        if self._blocks is None or not self._conns:
            return
        self.loop.call_soon_threadsafe(self._blocks.put_nowait, block)

    async def _notify_blocks(self) -> None:
        while True:
            block = await self._blocks.get()
            try:
                await self._notify_block(block)
            except Exception:  # noqa: BLE001 - one bad block must not end notifications
                log.exception("notifying block %s", block.get("number"))

    async def _notify_block(self, block: dict) -> None:
        head = {k: v for k, v in block.items() if k not in ("transactions", "uncles", "size", "totalDifficulty")}
        log_subs = []
        for conn in list(self._conns):
            for sid, sub in list(conn.subs.items()):
                if sub["kind"] == "newHeads":
                    conn.send(_dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                      "params": {"subscription": sid, "result": head}}))
                else:
                    log_subs.append((conn, sid, sub["filter"]))
        if not log_subs:
            return
        calls = [("eth_getLogs", [{**flt, "blockHash": block["hash"]}]) for _, _, flt in log_subs]
        replies = await self.loop.run_in_executor(self.pool, self.proxy_batch, calls)
        for (conn, sid, _), rep in zip(log_subs, replies, strict=False):
            for entry in rep.get("result") or []:
                conn.send(_dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                  "params": {"subscription": sid, "result": entry}}))
