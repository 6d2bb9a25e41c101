"""Block observer: fast polling of ``eth_blockNumber`` + ``eth_getBlockByNumber(n, false)``.

Runs in a thread of the controlling process. For every new block it records
the local wall-clock time (``time.time()``) at which the block was first
seen, and the block's header timestamp, gas used, gas limit and tx hashes.
Resolution = the poll interval (default 20 ms) plus one RPC round trip.
Works on any JSON-RPC chain.
"""

from __future__ import annotations

import threading
import time

from harness.chain.metrics import BlockObs
from harness.chain.rpc import Rpc, to_int


class ObservationError(AssertionError):
    """The observer could not see every block of the run in time (it stopped, or saw blocks too late)."""


class BlockObserver:
    """Polls ``url`` for new blocks from the one after ``start_block`` (default: latest at start()).

    A failed poll is retried at the next interval and never skips a block (the cursor only moves past
    blocks actually fetched; a block the node reports as null is retried too). Every error is kept in
    ``errors`` (local time, message); ``failure`` is set if the thread gave up (too many errors, its
    duration cap) — the caller must then fail the run. Each block carries ``prev_poll_s``, so the
    resolution of every inclusion observation is known (``BlockObs.seen_uncertainty_s``).
    """

    def __init__(
        self, url: str, poll_s: float = 0.02, max_duration_s: float = 3600.0, max_errors: int = 1000
    ):
        self.url = url
        self.poll_s = poll_s
        self.max_duration_s = max_duration_s
        self.max_errors = max_errors
        self.blocks: dict[int, BlockObs] = {}
        self.errors: list[tuple[float, str]] = []
        self.failure: str | None = None
        self.start_block: int | None = None
        self.polls = 0
        self.last_poll_s: float | None = None  # local time of the last successful poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> BlockObserver:
        with Rpc(self.url) as rpc:
            self.start_block = to_int(rpc.call("eth_blockNumber"))
        self._t_start = self.last_poll_s = time.time()
        self._thread = threading.Thread(target=self._run, name="block-observer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        rpc = Rpc(self.url, timeout_s=10.0)
        last = self.start_block
        prev_poll = self._t_start
        deadline = time.monotonic() + self.max_duration_s
        try:
            while not self._stop.is_set():
                if time.monotonic() > deadline:
                    self.failure = f"observer stopped at its {self.max_duration_s:.0f} s duration cap"
                    break
                try:
                    head = to_int(rpc.call("eth_blockNumber"))
                    seen = time.time()
                    if head > last:
                        nums = list(range(last + 1, head + 1))
                        got = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in nums])
                        with self._lock:
                            for n, b in zip(nums, got, strict=False):
                                if b is None:  # reported by eth_blockNumber, not served yet: next poll
                                    break
                                self.blocks[n] = BlockObs(
                                    number=n,
                                    seen_s=seen,
                                    timestamp=to_int(b["timestamp"]),
                                    gas_used=to_int(b["gasUsed"]),
                                    gas_limit=to_int(b["gasLimit"]),
                                    tx_hashes=tuple(b.get("transactions") or ()),
                                    prev_poll_s=prev_poll,
                                )
                                last = n
                    self.polls += 1
                    self.last_poll_s = seen
                    if last == head:  # every block up to head is recorded: this poll saw them all
                        prev_poll = seen
                except Exception as e:  # noqa: BLE001 - recorded; the poll is retried, no block is skipped
                    self.errors.append((time.time(), repr(e)))
                    if len(self.errors) >= self.max_errors:
                        self.failure = f"observer gave up after {len(self.errors)} failed polls: {e!r}"
                        break
                self._stop.wait(self.poll_s)
        finally:
            rpc.close()

    def check(self, max_uncertainty_s: float | None = None, numbers: set[int] | None = None) -> None:
        """Raise :class:`ObservationError` if the thread gave up, or if a block (of ``numbers``, default
        all) was seen more than ``max_uncertainty_s`` after the previous poll that missed it."""
        if self.failure:
            raise ObservationError(f"{self.failure}; last errors: {[m for _, m in self.errors[-3:]]}")
        if max_uncertainty_s is None:
            return
        with self._lock:
            late = [
                (b.number, b.seen_uncertainty_s)
                for b in self.blocks.values()
                if (numbers is None or b.number in numbers)
                and b.seen_uncertainty_s is not None
                and b.seen_uncertainty_s > max_uncertainty_s
            ]
        if late:
            shown = ", ".join(f"#{n}: {u:.2f} s" for n, u in sorted(late)[:10])
            raise ObservationError(
                f"{len(late)} block(s) seen more than {max_uncertainty_s:g} s after the previous poll "
                f"({shown}); {len(self.errors)} failed poll(s), last: {[m for _, m in self.errors[-3:]]}"
            )

    def seen_hashes(self) -> set[str]:
        with self._lock:
            return {h for b in self.blocks.values() for h in b.tx_hashes}

    def snapshot(self) -> list[BlockObs]:
        with self._lock:
            return sorted(self.blocks.values(), key=lambda b: b.number)

    def stop(self) -> list[BlockObs]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        return self.snapshot()
