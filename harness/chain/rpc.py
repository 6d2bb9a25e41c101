"""A small JSON-RPC client over HTTP (keep-alive session) or WebSocket: single calls and batches.

Works against any Ethereum JSON-RPC endpoint (anvil, a rollup node, a
public node). Errors come back as :class:`RpcError` with the method and the
node's message. A ``ws://`` URL speaks JSON-RPC over one WebSocket connection
(subscription notifications arriving in between are skipped).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter


class RpcError(RuntimeError):
    """The node answered a JSON-RPC error (``code``, ``message``) or an unusable reply."""

    def __init__(self, method: str, error: Any):
        self.method = method
        self.error = error
        self.code = error.get("code") if isinstance(error, dict) else None
        msg = error.get("message") if isinstance(error, dict) else str(error)
        super().__init__(f"{method}: {msg}")


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


class Rpc:
    """JSON-RPC client bound to one URL (http(s):// or ws(s)://). Not thread-safe: one per thread/process."""

    def __init__(self, url: str, timeout_s: float = 30.0, pool: int = 4):
        if not url.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"RPC URL must be http(s):// or ws(s)://..., got {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.transport = "ws" if url.startswith(("ws://", "wss://")) else "http"
        self._ws: Any = None
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self.session.close()
        if self._ws is not None:
            try:
                self._ws.close()
            finally:
                self._ws = None

    def _exchange(self, body: Any) -> Any:
        """Send one JSON-RPC body (object or batch) and return the decoded reply."""
        if self.transport == "http":
            resp = self.session.post(self.url, json=body, timeout=self.timeout_s)
            resp.raise_for_status()
            return resp.json()
        from websockets.sync.client import connect

        if self._ws is None:
            # entered as a context manager (websockets 17 warns otherwise); close() leaves it
            self._ws = connect(self.url, open_timeout=self.timeout_s, max_size=None, compression=None).__enter__()
        self._ws.send(json.dumps(body))
        while True:
            reply = json.loads(self._ws.recv(timeout=self.timeout_s))
            if isinstance(reply, dict) and reply.get("method") == "eth_subscription":
                continue  # a notification of a subscription made on this connection: not our reply
            return reply

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, params: Sequence[Any] | None = None) -> Any:
        """One request; returns ``result`` or raises :class:`RpcError`."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params or [])}
        reply = self._exchange(body)
        if "error" in reply:
            raise RpcError(method, reply["error"])
        return reply.get("result")

    def batch_raw(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """One HTTP request carrying a JSON-RPC batch; replies in request order (error or result)."""
        if not calls:
            return []
        first = next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        for _ in range(len(calls) - 1):
            next(self._ids)
        replies = self._exchange(body)
        if not isinstance(replies, list):
            raise RpcError("batch", replies.get("error", replies) if isinstance(replies, dict) else replies)
        by_id = {r.get("id"): r for r in replies}
        out = []
        for i, (m, _p) in enumerate(calls):
            r = by_id.get(first + i)
            out.append(
                r if r is not None else {"error": {"code": -1, "message": f"no reply for {m} in batch"}}
            )
        return out

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """A batch whose every call must succeed: results in order, or :class:`RpcError` for the first error."""
        out = []
        for (m, _p), r in zip(calls, self.batch_raw(calls), strict=False):
            if "error" in r:
                raise RpcError(m, r["error"])
            out.append(r.get("result"))
        return out


def to_int(value: str | int | None) -> int | None:
    """A JSON-RPC quantity (hex string) as int; None stays None."""
    if value is None:
        return None
    return value if isinstance(value, int) else int(value, 16)
