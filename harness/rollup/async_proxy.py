"""The engine proxy on the RPC server's event loop, for read-only calls (eth_blockNumber, eth_call,
receipts, ...): no hop to a dispatch thread and back, whose two thread wake-ups under a contended GIL
cost more than anvil takes to answer.

One request in flight per connection (anvil's IPC may reorder replies on one connection, see
:mod:`harness.chain.ipc`; the same holds for HTTP/1.1 keep-alive), connections reused from an idle pool,
at most ``max_connections`` open; a caller beyond that waits for one to come back. A connection that
fails is dropped; the call is tried once more on a fresh one (these calls are read-only: running one
twice changes nothing), then reported as the engine being unavailable.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

from harness.chain import ipc
from harness.chain.rpc import batch_replies, batch_requests

#: connections to the engine opened by the event loop's proxy (each carries one request at a time)
MAX_CONNECTIONS = 16


class EngineUnavailable(ConnectionError):
    """The engine did not answer (connection refused, closed, or timed out) on two tries."""


class _IpcConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, body: bytes, timeout_s: float) -> Any:
        self.writer.write(body)
        line = await asyncio.wait_for(self.reader.readline(), timeout_s)
        if not line.endswith(b"\n"):
            raise ConnectionError("the engine closed the IPC connection before replying")
        return json.loads(line)

    def close(self) -> None:
        self.writer.close()


class AsyncEngineProxy:
    """``await proxy.batch_raw([(method, params), ...])`` -> reply objects in call order, like
    :meth:`harness.chain.rpc.Rpc.batch_raw`; a single call is sent as one JSON object, not a batch."""

    def __init__(self, target: str | Path, timeout_s: float = 30.0, max_connections: int = MAX_CONNECTIONS) -> None:
        self.target, self.timeout_s = target, timeout_s
        self._idle: list[Any] = []
        self._slots: asyncio.Semaphore | None = None
        self._max = max_connections
        self._session: Any = None
        self._ids = itertools.count(1)
        self.reconnects = 0

    async def _open(self) -> Any:
        if isinstance(self.target, Path):
            sock = ipc.connect(self.target, self.timeout_s)
            sock.setblocking(False)
            reader, writer = await asyncio.open_unix_connection(sock=sock, limit=64 * 1024 * 1024)
            return _IpcConn(reader, writer)
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max, force_close=False),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return _HttpConn(self._session, self.target)

    async def _exchange(self, body: bytes) -> Any:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        async with self._slots:
            last: BaseException | None = None
            for _ in (0, 1):
                conn = self._idle.pop() if self._idle else None
                try:
                    if conn is None:
                        conn = await self._open()
                    reply = await conn.exchange(body, self.timeout_s)
                except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as e:
                    last = e
                    if conn is not None:
                        conn.close()
                    self.reconnects += 1
                    continue
                self._idle.append(conn)
                return reply
            raise EngineUnavailable(f"{type(last).__name__}: {last}")

    async def batch_raw(self, calls: list[tuple[str, list]]) -> list[dict]:
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        reqs = batch_requests(ids, calls)
        single = len(reqs) == 1
        replies = await self._exchange(json.dumps(reqs[0] if single else reqs, separators=(",", ":")).encode())
        out = batch_replies(ids, calls, [replies] if single and isinstance(replies, dict) else replies)
        if out is None:
            raise EngineUnavailable(f"unusable reply: {str(replies)[:200]}")
        return out

    async def close(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None


class _HttpConn:
    """An aiohttp session's keep-alive pool stands for the connection (it reuses them itself)."""

    def __init__(self, session: Any, url: str) -> None:
        self.session, self.url = session, url

    async def exchange(self, body: bytes, timeout_s: float) -> Any:
        import aiohttp

        try:
            async with self.session.post(self.url, data=body, headers={"Content-Type": "application/json"}) as r:
                return json.loads(await r.read())
        except aiohttp.ClientError as e:
            raise ConnectionError(str(e)) from e

    def close(self) -> None:
        pass
