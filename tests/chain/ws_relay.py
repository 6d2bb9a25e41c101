"""A lossy WebSocket relay for observer tests: forwards a client's WebSocket JSON-RPC to an upstream node
both ways, except the ``eth_subscription`` notifications of blocks its ``drop`` predicate selects (a
push lost in transit, as a flaky proxy or a node under pressure loses one). 127.0.0.1, OS-assigned
port, its own event-loop thread; ``close()`` stops it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


class LossyWsRelay:
    def __init__(self, upstream_ws_url: str, drop: Callable[[int], bool]) -> None:
        self.upstream = upstream_ws_url
        self.drop = drop
        self.dropped: list[int] = []
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port: int | None = None
        self.thread = threading.Thread(target=self._main, name="ws-relay", daemon=True)
        self.thread.start()
        if not self._ready.wait(10) or self.port is None:
            raise RuntimeError("ws relay did not start")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _main(self) -> None:
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._client, "127.0.0.1", 0, max_size=None, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _client(self, client) -> None:
        async with connect(self.upstream, max_size=None, compression=None) as up:
            async def down() -> None:
                async for raw in up:
                    msg = json.loads(raw)
                    if isinstance(msg, dict) and msg.get("method") == "eth_subscription":
                        n = int(msg["params"]["result"]["number"], 16)
                        if self.drop(n):
                            self.dropped.append(n)
                            continue
                    await client.send(raw)

            async def upward() -> None:
                async for raw in client:
                    await up.send(raw)

            tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(upward())]
            _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=10)
