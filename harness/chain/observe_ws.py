"""A ``newHeads`` subscription over WebSocket for the inclusion observer (:mod:`harness.chain.observe`).

:meth:`NewHeadsSubscription.open` connects to a ``ws://`` JSON-RPC URL and sends
``eth_subscribe ["newHeads"]``; it raises :class:`SubscriptionUnavailable` (with the reason: no
WebSocket at that URL, the handshake was refused, the node refused the subscription) when the target
does not offer it. A reader thread does nothing but receive: each notification is timestamped
(``time.time()``) the moment ``recv`` returns it and queued, so the push time is never delayed by the
observer fetching blocks. A dropped connection is queued as ``(t, None, reason)``.
:meth:`NewHeadsSubscription.ping_rtt` measures the connection's round trip (WebSocket ping/pong).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any


class SubscriptionUnavailable(RuntimeError):
    """The target offers no ``newHeads`` subscription at this URL (the message says why)."""


class NewHeadsSubscription:
    """One WebSocket connection carrying one ``newHeads`` subscription; :attr:`heads` is the queue of
    ``(seen_s, header_or_None, drop_reason_or_None)``."""

    def __init__(self, ws_url: str, ws: Any, sub_id: str) -> None:
        self.ws_url = ws_url
        self.sub_id = sub_id
        self.heads: queue.Queue[tuple[float, dict[str, Any] | None, str | None]] = queue.Queue()
        self._closed = threading.Event()
        self._ws = ws
        self._reader = threading.Thread(target=self._read, name="newheads-reader", daemon=True)
        self._reader.start()

    @classmethod
    def open(cls, ws_url: str, timeout_s: float = 5.0) -> NewHeadsSubscription:
        from websockets.sync.client import connect

        try:
            ws = connect(ws_url, open_timeout=timeout_s, max_size=None, compression=None).__enter__()
        except Exception as e:  # noqa: BLE001 - every way of not having a WebSocket there is a reason
            raise SubscriptionUnavailable(f"no WebSocket at {ws_url}: {type(e).__name__}: {e}") from e
        try:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            deadline = time.monotonic() + timeout_s
            while True:
                reply = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
                if isinstance(reply, dict) and reply.get("id") == 1:
                    break
            if "error" in reply or not isinstance(reply.get("result"), str):
                raise SubscriptionUnavailable(
                    f"eth_subscribe newHeads refused at {ws_url}: {reply.get('error', reply)}")
        except SubscriptionUnavailable:
            ws.close()
            raise
        except Exception as e:  # noqa: BLE001 - a timeout, a closed connection, a non-JSON reply
            ws.close()
            raise SubscriptionUnavailable(
                f"eth_subscribe newHeads unanswered at {ws_url}: {type(e).__name__}: {e}") from e
        return cls(ws_url, ws, reply["result"])

    def _read(self) -> None:
        while True:
            try:
                raw = self._ws.recv()
            except Exception as e:  # noqa: BLE001 - the connection ended: the observer falls back
                self.heads.put((time.time(), None, f"{type(e).__name__}: {e}"))
                return
            seen = time.time()
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(msg, dict) or msg.get("method") != "eth_subscription":
                continue
            params = msg.get("params") or {}
            if params.get("subscription") == self.sub_id and isinstance(params.get("result"), dict):
                self.heads.put((seen, params["result"], None))

    def ping_rtt(self, timeout_s: float = 2.0) -> float | None:
        """Round trip of one WebSocket ping (s); None if no pong within ``timeout_s`` or it failed."""
        try:
            t0 = time.perf_counter()
            pong = self._ws.ping()
            if not pong.wait(timeout_s):
                return None
            return time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - a dropped connection shows up in the reader's queue
            return None

    def start_pinger(self, interval_s: float, timeout_s: float, rtts: list[float]) -> None:
        """Measure :meth:`ping_rtt` every ``interval_s`` on a thread of its own, appending each round trip
        to ``rtts``: a pong that is slow to come (a loaded server) must not stall the observer's
        heartbeat, whose interval is the resolution of the blocks it reports first."""

        def loop() -> None:
            while not self._closed.is_set():
                rtt = self.ping_rtt(timeout_s)
                if rtt is not None:
                    rtts.append(rtt)
                self._closed.wait(interval_s)

        threading.Thread(target=loop, name="newheads-pinger", daemon=True).start()

    @property
    def closing(self) -> bool:
        """:meth:`close` was called (a drop queued after it is the close, not a lost connection)."""
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._reader.join(timeout=5)
