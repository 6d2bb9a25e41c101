"""Each L2 block's state diff, traced as soon as the block tracker records the block.

ZKsync's state keeper writes an L2 block's storage logs when it seals that L2 block, so the L1 batch seal
finds the batch's state diff ready and only merges it; its sealing stages (``waiting_for_tree`` and the
rest) never include executing or tracing the blocks. This node's engine is an anvil that executes blocks
as a black box, so the diff has to be read back by tracing (``trace_replayBlockTransactions``). Done at
batch seal, that tracing made ``state_diff`` a sealing stage ZKsync does not have, and put a burst of
engine work (the engine is busiest exactly then) on the batch's critical path. This thread traces every
block ahead, one block (or a 20-block JSON-RPC batch when behind) at a time.

As in ZKsync, where an L1 batch can only close over L2 blocks whose storage logs are written, the sealer
considers a recorded block for a batch once its diff is traced (:meth:`BlockDiffTracer.ready`). The batch
seal takes the blocks' diffs from here and merges them; should the tracer stall (a block recorded more
than ``STALE_S`` seconds ago still untraced: the engine refusing traces, say), the sealer stops waiting
and the seal traces the missing blocks itself, counted in the batch record. What each block's trace cost
is recorded with the batch (``block_trace_s``), so the extraction cost stays in view; it is simply not on
the sealing path any more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from harness.chain.rpc import Rpc
from harness.rollup.state_diff import merge_block_diffs, per_block_state_diffs

log = logging.getLogger("rollup.diff_tracer")

#: a recorded block still untraced this many seconds after it was seen: the sealer stops waiting for it
STALE_S = 10.0


class BlockDiffTracer:
    """Traces recorded blocks ahead of the sealer; ``take`` hands a batch's blocks over (and forgets them)."""

    def __init__(self, rpc: Rpc, last_recorded: Callable[[], int], next_unsealed: int) -> None:
        self.rpc, self.last_recorded = rpc, last_recorded
        self._lock = threading.Lock()
        self._diffs: dict[int, tuple[dict[bytes, bytes], int, float]] = {}  # block -> (diff, txs, trace s)
        self._next = next_unsealed  # next block to trace
        self._taken_through = next_unsealed - 1  # blocks at or below this are sealed: never store them
        self.errors = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                head = self.last_recorded()
                with self._lock:
                    first = max(self._next, self._taken_through + 1)
                if first <= head:
                    last = min(head, first + 19)
                    t0 = time.perf_counter()
                    per = per_block_state_diffs(self.rpc, first, last)
                    each = (time.perf_counter() - t0) / len(per)
                    with self._lock:
                        for n, (d, ntx) in per.items():
                            if n > self._taken_through:
                                self._diffs[n] = (d, ntx, each)
                        self._next = last + 1
                    continue
            except Exception as e:  # noqa: BLE001 - engine busy or restarting: the seal traces what is missing
                self.errors += 1
                if not stop.is_set():
                    log.warning("block diff tracer: %s", e)
            stop.wait(0.05)

    def ready(self, blocks: list[dict], now: float | None = None) -> list[dict]:
        """The leading blocks of ``blocks`` (recorded, consecutive) whose diffs are traced (or already
        taken); all of them if the first untraced one was seen more than STALE_S seconds ago."""
        with self._lock:
            through = max(self._next - 1, self._taken_through)
        k = 0
        while k < len(blocks) and blocks[k]["number"] <= through:
            k += 1
        if k < len(blocks) and (now if now is not None else time.time()) - blocks[k]["seen_at"] > STALE_S:
            return blocks
        return blocks[:k]

    def take(self, first: int, last: int, rpc: Rpc) -> tuple[dict[bytes, bytes], dict]:
        """The merged diff of blocks first..last, and how it was obtained: ``traced_ahead`` blocks (their
        summed trace time ``traced_ahead_s``) and ``traced_at_seal`` blocks traced now through ``rpc``."""
        with self._lock:
            have = {n: self._diffs.pop(n) for n in range(first, last + 1) if n in self._diffs}
            self._taken_through = max(self._taken_through, last)
            for n in [n for n in self._diffs if n <= last]:
                del self._diffs[n]
        missing = [n for n in range(first, last + 1) if n not in have]
        if missing:  # traced here, on the sealing path, and counted as such
            per = per_block_state_diffs(rpc, missing[0], missing[-1])
            for n in missing:
                d, ntx = per[n]
                have[n] = (d, ntx, 0.0)
        diff = merge_block_diffs([have[n][0] for n in range(first, last + 1)])
        info = {"traced_ahead": len(have) - len(missing),
                "traced_ahead_s": sum(have[n][2] for n in have if n not in missing),
                "traced_at_seal": len(missing)}
        return diff, info
