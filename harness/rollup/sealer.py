"""Stage 1 of the batch pipeline, the sealer: which recorded blocks the next batch takes (:func:`pick_batch`)
and the transactional seal (state diff, Merkle tree, compressed batch file, one SQLite transaction); mixed
into :class:`harness.rollup.batcher.Pipeline`."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from harness.rollup.compress import BatchData, compress
from harness.rollup.config import BatchCriteria
from harness.rollup.merkle import TreeUndo, keccak
from harness.rollup.state_diff import blocks_state_diff

log = logging.getLogger("rollup.batcher")


def pick_batch(blocks: list[dict], first: int, crit: BatchCriteria, tx_bytes: Callable[[str], int],
               now: float) -> list[dict] | None:
    """The blocks the next batch takes, or None to wait: a gap-free run of recorded blocks from
    ``first``, cut at the first of max_txs / max_bytes / max_blocks reached once it holds a tx (leading
    empty blocks ride along, so a batch can be longer than max_blocks only by those), or when the
    batch's time window closes. The time window is max_seconds from when the
    batch's first tx-bearing block was seen and is judged on the blocks' own ``seen_at`` times, not on
    when the sealer looks: a sealer that fell behind (a slow previous batch) still groups the blocks that
    came within the window instead of sealing one block per batch; with no later block yet, the window
    closes at ``now``."""
    ntx = nbytes = scanned = 0
    first_tx_seen: float | None = None
    for j, b in enumerate(blocks):
        if b["number"] != first + j:
            break  # the tracker has not recorded a gap-free range yet
        if first_tx_seen is not None and b["seen_at"] - first_tx_seen >= crit.max_seconds:
            return blocks[:j]  # this block came after the batch's time window closed
        ntx += len(b["tx_hashes"])
        nbytes += sum(tx_bytes(h) for h in b["tx_hashes"])
        scanned = j + 1
        if ntx and first_tx_seen is None:
            first_tx_seen = b["seen_at"]
        if ntx and (ntx >= crit.max_txs or nbytes >= crit.max_bytes or j + 1 >= crit.max_blocks):
            return blocks[: j + 1]
    if first_tx_seen is not None and now - first_tx_seen >= crit.max_seconds:
        return blocks[:scanned]  # the window closed with no later block yet
    return None


class SealStage:
    """The sealer stage (``Pipeline`` provides the records, the tree, the DB and the config)."""

    # -- stage 1: sealer -------------------------------------------------------------------------------------
    def next_first_block(self) -> int:
        with self.lock:
            return max((r["last_block"] for r in self.batches.values()), default=0) + 1

    def _sealer(self) -> None:
        crit = self.cfg.criteria
        while not self.stop_event.is_set():
            first = self.next_first_block()
            blocks = self.db.blocks(first, first + 10_000)
            if self.diff_tracer is not None:  # a block joins a batch once its state diff is traced
                blocks = self.diff_tracer.ready(blocks)
            take = pick_batch(blocks, first, crit, lambda h: len(self.raw_by_hash.get(h.lower(), b"")),
                              time.time())
            if take is None:
                self.stop_event.wait(0.1)
                continue
            self.seal(take)

    def seal(self, blocks: list[dict]) -> dict:
        """Seal one batch from consecutive recorded blocks; persists the batch file, tree delta and record.

        Transactional: if anything fails before the SQLite commit, the in-memory tree is reverted to its
        previous root (undo log) and the batch file is removed, so a restarted sealer starts from the
        state the DB holds."""
        with self.lock:
            n = max(self.batches, default=0) + 1
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        block_data = []
        for b in blocks:
            raws = []
            for h in b["tx_hashes"]:
                raw = self.raw_by_hash.get(h.lower())
                if raw is None:
                    raise RuntimeError(f"block {b['number']} holds tx {h} that did not come through the sequencer")
                raws.append(raw)
            block_data.append((b["number"], b["timestamp"], raws))
        timings["seal"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        trace_info = None
        if self.diff_tracer is not None:  # traced block by block as recorded (diff_tracer.py): merge them
            diff, trace_info = self.diff_tracer.take(blocks[0]["number"], blocks[-1]["number"], self.l2)
        else:
            diff, _ = blocks_state_diff(self.l2, blocks[0]["number"], blocks[-1]["number"])
        timings["state_diff"] = time.perf_counter() - t0

        prev_root = self.tree.root
        undo = TreeUndo()
        path = self.blob_dir / f"{n}.bin"
        try:
            t0 = time.perf_counter()
            changes = self.tree.update(diff, undo=undo)
            new_root = self.tree.root
            timings["tree"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            bd = BatchData(n, block_data, sorted(diff.items()))
            raw_data = bd.encode()
            blob = compress(raw_data, self.cfg.compression)
            self._write_batch_file(path, blob)
            timings["compress"] = time.perf_counter() - t0

            rec = {
                "number": n, "status": "sealed", "first_block": blocks[0]["number"],
                "last_block": blocks[-1]["number"], "block_count": len(blocks), "tx_count": bd.tx_count,
                "leaves_touched": len(diff), "tree_nodes_changed": len(changes),
                "prev_root": "0x" + prev_root.hex(), "new_root": "0x" + new_root.hex(),
                "data_hash": "0x" + keccak(blob).hex(), "l1_data_hash": "0x" + self.l1_data_hash(blob).hex(),
                "data_availability": self.cfg.data_availability, "raw_bytes": len(raw_data),
                "compressed_bytes": len(blob), "compression": self.cfg.compression,
                "compression_ratio": len(raw_data) / max(1, len(blob)),
                "tx_bytes": sum(len(r) for _, _, rs in block_data for r in rs),
                "l2_gas_used": sum(b["gas_used"] for b in blocks),
                "first_block_timestamp": blocks[0]["timestamp"], "sealed_at": time.time(), "timings": timings,
            }
            if trace_info is not None:  # the blocks' trace cost, paid as they were recorded (not a sealing stage)
                rec["block_trace"] = trace_info
            t0 = time.perf_counter()
            timings["persist"] = 0.0  # overwritten below; present in the stored record
            tree_hash_s = timings["tree"]
            tree_write_s = self.db.seal_batch(rec, changes, diff)  # record + block map + tree delta, one txn
            timings["persist"] = time.perf_counter() - t0 - tree_write_s
            timings["tree"] = tree_hash_s + tree_write_s
            rec["tree_breakdown_s"] = {"hash": tree_hash_s, "write": tree_write_s}
        except BaseException:
            self.tree.revert(undo)
            if self.tree.root != prev_root:  # cannot happen; never continue on a tree that is ahead
                self.halted = f"batch {n}: Merkle tree could not be reverted after a failed seal"
                raise
            path.unlink(missing_ok=True)
            raise
        with self.lock:  # the DB holds the record already; the in-memory view follows
            self.batches[n] = rec
        try:
            self.db.put_batch(rec)  # the final persist timing (the record in the seal transaction had 0.0)
        except Exception:  # noqa: BLE001 - only the timing is lost; the batch is sealed
            log.exception("batch %d: could not store the persist timing", n)
        log.info("sealed batch %d: blocks %d..%d, %d txs", n, rec["first_block"], rec["last_block"], rec["tx_count"])
        self.wake.set()
        return rec

    @staticmethod
    def _write_batch_file(path: Path, blob: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())

    def l1_data_hash(self, blob: bytes) -> bytes:
        """The dataHash the Rollup contract will store for this batch: keccak(data) for calldata, keccak of
        the EIP-4844 versioned hashes for blobs (computed here, before the commit, from the same bytes)."""
        if self.cfg.data_availability == "blobs":
            from harness.rollup.blobs import blob_data_hash, blob_versioned_hashes, encode_blobs

            return blob_data_hash(blob_versioned_hashes(encode_blobs(blob)))
        return keccak(blob)
