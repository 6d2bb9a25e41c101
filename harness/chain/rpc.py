"""The harness's one JSON-RPC client: HTTP(S) keep-alive, WebSocket or a Unix IPC socket; calls and batches.

Works against any Ethereum JSON-RPC endpoint (anvil, a rollup node, a public node) and is what the rollup
node itself uses to reach its engines and its L1. :class:`Rpc` takes

* an ``http(s)://`` URL: HTTP/1.1 keep-alive over :mod:`http.client`, one connection per thread (so one
  client may be shared by threads); an idle connection the server has closed is replaced before a
  request is sent on it, and a request once sent is never sent again;
* a ``ws(s)://`` URL: one WebSocket connection per client (not shared by threads; subscription
  notifications arriving between replies are skipped);
* a :class:`pathlib.Path`: anvil's IPC socket (:mod:`harness.chain.ipc`), one connection per thread,
  retried on a fresh connection only if it could not be *sent* on a reused one.

An error reply is :class:`RpcError` (method, code, message, data); a request that failed in transit
(connection refused or reset, timeout, an HTTP status other than 200, a reply that is not JSON) is
:class:`RpcTransportError`, a :class:`ConnectionError`: its fate on the server is unknown.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import select
import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class RpcError(RuntimeError):
    """The node answered a JSON-RPC error (``code``, ``message``, ``data``; ``error``: the object as sent)
    or an unusable reply."""

    def __init__(self, method: str, error: Any):
        self.method = method
        self.error = error
        if isinstance(error, dict):
            self.code, self.message, self.data = error.get("code"), str(error.get("message", "")), error.get("data")
        else:
            self.code, self.message, self.data = None, str(error), None
        super().__init__(f"{method}: {self.message}")


class RpcTransportError(ConnectionError):
    """The request or its reply did not make it (refused, reset, timed out, HTTP status, not JSON)."""


def ws_url_for(url: str) -> str:
    """The WebSocket URL of an HTTP JSON-RPC URL on the same host and port (anvil, this repo's node and
    most nodes serve both there)."""
    if url.startswith(("ws://", "wss://")):
        return url
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    raise ValueError(f"not an RPC URL: {url!r}")


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class _PerThread:
    """A transport with one connection per thread (``self._local.conn``); :meth:`close` closes the caller's."""

    def __init__(self) -> None:
        self._local = threading.local()

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None


class _Http(_PerThread):
    """HTTP/1.1 keep-alive, one connection per thread."""

    def __init__(self, url: str, timeout_s: float) -> None:
        u = urllib.parse.urlsplit(url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.headers = {"Content-Type": "application/json"}
        if u.username is not None:  # https://user:pass@host/ as requests and curl read it
            cred = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password or '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        self.timeout_s = timeout_s
        super().__init__()

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is not None and c.sock is not None and select.select([c.sock], [], [], 0)[0]:
            # readable while idle = the server closed it (keep-alive timeout) or sent junk: do not reuse it
            # (urllib3's is_connection_dropped); checked BEFORE sending, so nothing is ever sent twice
            self.close()
            c = None
        if c is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            c = cls(self.host, self.port, timeout=self.timeout_s)
            self._local.conn = c
        return c

    def exchange(self, payload: Any) -> Any:
        """One request on this thread's connection. Once sent it is never sent again (a resent
        ``eth_sendRawTransaction`` could run twice or come back "already known"): a failure after the
        connection check is an :class:`RpcTransportError`, the request's fate unknown."""
        c = self._conn()
        try:
            c.request("POST", self.path, _encode(payload), self.headers)
            resp = c.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError) as e:
            self.close()
            raise RpcTransportError(f"{type(e).__name__}: {e}") from e
        if resp.status != 200:
            raise RpcTransportError(f"HTTP {resp.status} {resp.reason}: {data[:200]!r}")
        try:
            return json.loads(data)
        except ValueError as e:
            raise RpcTransportError(f"reply is not JSON: {data[:200]!r}") from e


class _Ipc(_PerThread):
    """anvil's IPC socket, one connection per thread, one request in flight per connection."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__()
        self.path, self.timeout_s = Path(path), timeout_s

    def exchange(self, payload: Any) -> Any:
        from harness.chain import ipc

        for _ in (0, 1):
            c = getattr(self._local, "conn", None)
            fresh = c is None
            try:
                if fresh:
                    c = self._local.conn = ipc.IpcConnection(self.path, self.timeout_s)
                c.send(payload)
            except OSError as e:
                self.close()
                if fresh:  # never sent (once sent it is never sent again: a resent tx is "already known")
                    raise RpcTransportError(f"{type(e).__name__}: {e}") from e
                continue
            try:
                return c.receive()
            except (OSError, ValueError) as e:
                self.close()
                raise RpcTransportError(f"{type(e).__name__}: {e}") from e
        raise AssertionError("unreachable")


class _Ws:
    """One WebSocket connection (websockets' sync client)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._ws: Any = None

    def exchange(self, payload: Any) -> Any:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        try:
            if self._ws is None:
                # entered as a context manager (websockets 17 warns otherwise); close() leaves it
                self._ws = connect(self.url, open_timeout=self.timeout_s, max_size=None, compression=None).__enter__()
            self._ws.send(_encode(payload).decode())
            while True:
                reply = json.loads(self._ws.recv(timeout=self.timeout_s))
                if isinstance(reply, dict) and reply.get("method") == "eth_subscription":
                    continue  # a notification of a subscription made on this connection: not our reply
                return reply
        except (OSError, WebSocketException, ValueError) as e:
            self.close()
            raise RpcTransportError(f"{type(e).__name__}: {e}") from e

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            finally:
                self._ws = None


def batch_requests(ids: Sequence[int], calls: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """The request objects of a JSON-RPC batch, one per ``(method, params)`` with its id."""
    return [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)} for i, (m, p) in zip(ids, calls, strict=True)]


def batch_replies(ids: Sequence[int], calls: Sequence[tuple[str, Sequence[Any]]],
                  replies: Any) -> list[dict[str, Any]] | None:
    """The reply objects of a batch in call order, matched by id (a call with no reply gets an error
    object); a whole-batch error reply (an object, not an array) stands for every call. None: the reply
    is neither."""
    if isinstance(replies, dict) and "error" in replies:
        return [replies] * len(calls)
    if not isinstance(replies, list):
        return None
    by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
    return [by_id.get(i) or {"error": {"code": -32603, "message": f"no reply for {m} in batch"}}
            for i, (m, _p) in zip(ids, calls, strict=True)]


class Rpc:
    """JSON-RPC client bound to one endpoint: an ``http(s)://`` or ``ws(s)://`` URL, or a :class:`Path` to an
    IPC socket (see the module docstring for which transports may be shared by threads)."""

    def __init__(self, url: str | Path, timeout_s: float = 30.0):
        if isinstance(url, Path):
            self.url, self.socket_path, self.transport = None, url, "ipc"
            self._t: Any = _Ipc(url, timeout_s)
        elif isinstance(url, str) and url.startswith(("http://", "https://")):
            self.url, self.socket_path, self.transport = url, None, "http"
            self._t = _Http(url, timeout_s)
        elif isinstance(url, str) and url.startswith(("ws://", "wss://")):
            self.url, self.socket_path, self.transport = url, None, "ws"
            self._t = _Ws(url, timeout_s)
        else:
            raise ValueError(f"RPC URL must be http(s):// or ws(s)://... (or an IPC socket Path), got {url!r}")
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Close this thread's connection (the next call opens a new one)."""
        self._t.close()

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw(self, payload: Any) -> Any:
        """Send one JSON-RPC body (an object or a batch array) and return the decoded reply."""
        return self._t.exchange(payload)

    def call(self, method: str, params: Sequence[Any] | None = None) -> Any:
        """One request; returns ``result`` or raises :class:`RpcError`."""
        reply = self.raw({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params or [])})
        if not isinstance(reply, dict):
            raise RpcError(method, f"unusable reply: {str(reply)[:200]}")
        if "error" in reply:
            raise RpcError(method, reply["error"])
        return reply.get("result")

    def batch_raw(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """One request carrying a JSON-RPC batch; the reply objects (``result`` or ``error``) in call order.
        A whole-batch error reply (an object, not an array) stands for every call."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        replies = self.raw(batch_requests(ids, calls))
        out = batch_replies(ids, calls, replies)
        if out is None:
            raise RpcError("batch", f"unusable reply: {str(replies)[:200]}")
        return out

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """A batch whose every call must succeed: results in order, or :class:`RpcError` for the first error."""
        out = []
        for (m, _p), r in zip(calls, self.batch_raw(calls), strict=True):
            if "error" in r:
                raise RpcError(m, r["error"])
            out.append(r.get("result"))
        return out


def rpc_call(url: str | Path, method: str, params: Sequence[Any] | None = None, timeout: float = 5.0) -> Any:
    """One call on a fresh connection (closed after it); raises :class:`RpcError` on an error reply."""
    with Rpc(url, timeout) as rpc:
        return rpc.call(method, params)


def to_int(value: str | int | None) -> int | None:
    """A JSON-RPC quantity (hex string) as int; None stays None."""
    if value is None:
        return None
    return value if isinstance(value, int) else int(value, 16)
