"""Stage 3 of the batch pipeline: re-execution of each batch as published on L1, its Groth16 proof and
the proof's verification on L1, three threads so they overlap; mixed into
:class:`harness.rollup.batcher.Pipeline`."""

from __future__ import annotations

import copy
import logging
import queue
import time
from collections.abc import Callable
from typing import Any

from harness.rollup.compress import BatchData, decompress
from harness.rollup.engine import ReplayMismatch
from harness.rollup.merkle import SparseMerkleTree, keccak
from harness.rollup.pipeline_common import (
    ProofRefused,
    StageAbort,
)
from harness.rollup.state_diff import blocks_state_diff

log = logging.getLogger("rollup.batcher")


class ProveStages:
    """Re-execution, proving and verification (``Pipeline`` provides the records, the L1 and the prover)."""

    # -- stage 3: prover -------------------------------------------------------------------------------------
    def published(self, n: int, abort: Callable[[], bool] | None = None) -> Any:
        """Batch ``n`` as published on L1 (``RollupL1.published_batch``): the data from the commit tx,
        checked against L1's stored dataHash. The local batch file is passed only as the blob fallback
        for an L1 that does not serve blobs (it is then checked against L1's KZG versioned hashes). A
        mismatch is a refusal; an unreachable L1, or one that (as read now) holds no commit of batch ``n``
        (lagging, or reorged), is retried."""
        from harness.rollup.l1 import PublishedDataError

        path = self.blob_dir / f"{n}.bin"
        local = path.read_bytes() if path.is_file() else None

        def fetch() -> Any:
            try:
                return self.l1.published_batch(n, local)
            except PublishedDataError as e:
                raise ProofRefused(f"batch {n}: data on L1 unusable: {e}") from e

        return self._retry("published_data", fetch, no_retry=(ProofRefused,), abort=abort)

    def _replay_on_prover(self, pub: Any, ptree: SparseMerkleTree) -> None:
        """Re-execute one batch AS PUBLISHED (``pub``: RollupL1.published_batch's PublishedBatch, or any
        object with batch_number, prev_root, new_root and data) on the prover's engine; check the state
        diff and the resulting root against what was published. Raises ProofRefused on any mismatch."""
        n = pub.batch_number
        try:
            bd = BatchData.decode(decompress(pub.data))
        except Exception as e:  # noqa: BLE001 - undecodable data on L1 is a refusal, not a crash
            raise ProofRefused(f"batch {n}: data published on L1 does not decode: {type(e).__name__}: {e}") from e
        if bd.number != n or not bd.blocks:
            raise ProofRefused(f"batch {n}: data published on L1 is for batch {bd.number} with {len(bd.blocks)} blocks")
        if ptree.root != pub.prev_root:
            raise ProofRefused(f"batch {n}: prover's root 0x{ptree.root.hex()} != L1 prevRoot 0x{pub.prev_root.hex()}")
        eng = self.prover_engine
        try:
            for num, ts, raws in bd.blocks:
                eng.replay_block(num, ts, raws, ["0x" + keccak(r).hex() for r in raws])
        except ReplayMismatch as e:
            raise ProofRefused(f"batch {n}: txs published on L1 do not re-execute as published: {e}") from e
        diff, _ = blocks_state_diff(eng.rpc, bd.blocks[0][0], bd.blocks[-1][0])
        if sorted(diff.items()) != bd.diff:
            raise ProofRefused(f"batch {n}: re-executed state diff differs from the one published on L1 "
                               f"({len(diff)} vs {len(bd.diff)} leaves)")
        ptree.update(diff)
        if ptree.root != pub.new_root:
            raise ProofRefused(f"batch {n}: re-executed root 0x{ptree.root.hex()} != L1 newRoot 0x{pub.new_root.hex()}")

    def _prover(self) -> None:
        """Re-execution (stage 3a): replay each committed batch, as published on L1, on the prover's engine
        and hand it to the proof stage; runs ahead of proving and verification (at most PROOF_QUEUE
        batches), so the three overlap."""
        if self.halted:  # a persisted refusal: never prove past it
            raise ProofRefused(self.halted)
        self.prover_reset.clear()
        ptree = SparseMerkleTree(self.cfg.tree_depth)
        ptree.update(self.genesis)
        if not self._prover_engine_fresh:  # a restart of this stage: the engine's state is unknown
            if self.prover_engine is not None:
                self.prover_engine.stop()
            self.prover_engine = self.prover_engine_factory()
        self._prover_engine_fresh = False
        reset = self.prover_reset.is_set
        # catch up: replay (and check) every batch already proven on L1 (or whose proof awaits its
        # confirmations), from L1's data
        # prover_done is raised under the pipeline lock in the same hold that reads the batch's status: the
        # confirmer demotes a batch under that lock and then restarts the prover if prover_done covers it,
        # so a reorg of a batch this stage is replaying (or has replayed) is never missed, whichever of the
        # two comes first (raised after the read, a loss detected in between went unnoticed and the batch
        # was never proven again)
        done = self.prover_done = 0
        while not self.stop_event.is_set():
            with self.lock:
                rec = self.batches.get(done + 1)
                sent = rec is not None and self.confirmer.is_inflight("prove", rec["number"])
                if rec is None or not (rec["status"] in ("proven", "executed") or sent):
                    break
                self.prover_done = done + 1
            self._replay_on_prover(self.published(rec["number"], reset), ptree)
            done += 1
        while not self.stop_event.is_set():
            if reset():
                raise StageAbort("an L1 reorg undid a commit or a proof: the prover starts over")
            with self.lock:
                rec = copy.deepcopy(self.batches.get(done + 1) or {})
                take = rec.get("status") == "committed" and not self.confirmer.is_inflight("prove", done + 1)
                if take:
                    self.prover_done = done + 1  # from here its tree holds batch n (a reorg of n must restart it)
            if not take:
                self.stop_event.wait(0.05)
                continue
            n = rec["number"]

            def abort(n: int = n) -> bool:
                return reset() or self.batches[n]["status"] != "committed"

            t0 = time.perf_counter()
            try:
                pub = self.published(n, abort)
                self._replay_on_prover(pub, ptree)
            except ProofRefused as e:
                with self.lock:
                    cur = copy.deepcopy(self.batches[n])
                    cur["status"], cur["refusal"] = "refused", str(e)
                    self.save(cur)
                raise
            item = {"number": n, "pub": pub, "reexecute": time.perf_counter() - t0}
            while not self.stop_event.is_set():  # backpressure: proving is the slower stage
                if reset():
                    raise StageAbort("an L1 reorg undid a commit or a proof: the prover starts over")
                try:
                    self._to_prove.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            done = n

    def _proof_maker(self) -> None:
        """Proving (stage 3b): a Groth16 proof for each re-executed batch, in order."""
        while not self.stop_event.is_set():
            item = self._proof_pending  # a proof that failed last time (this stage restarted) goes first
            if item is None:
                try:
                    item = self._to_prove.get(timeout=0.1)
                except queue.Empty:
                    continue
                self._proof_pending = item
            n, pub = item["number"], item["pub"]
            with self.lock:  # proven meanwhile, or its proof made / awaiting confirmations (a re-execution
                stale = (self.batches.get(n, {}).get("status") != "committed"  # restart queues batches again)
                         or n in self._proved or n in self.confirmer.inflight["prove"])
            if not stale:
                t0 = time.perf_counter()
                proof = self.prover.prove(n, pub.prev_root, pub.new_root, pub.data_hash,
                                          chain_id=self.l1.chain_id, rollup_address=self.l1.address)
                item["proof"], item["prove"] = proof, time.perf_counter() - t0
                with self.lock:
                    self._proved[n] = item
            self._proof_pending = None

    def _verifier(self) -> None:
        """Verification (stage 3c): each proof to L1 (``proveBatch``), in batch order; the step counts once
        its receipt has its confirmations (confirm.py)."""
        while not self.stop_event.is_set():
            rec = self._next_to_send("prove")
            with self.lock:
                item = self._proved.get(rec["number"]) if rec is not None else None
            if item is None:
                self.stop_event.wait(0.05)
                continue
            n, proof, pub = rec["number"], item["proof"], item["pub"]
            t0 = time.perf_counter()
            try:
                result, _ = self._send_step("prove", "prove_batch", n, lambda n=n, proof=proof: self.l1.prove_batch(
                    self.cfg.l1_key, n, proof), self._not_next("prove", n))
            except StageAbort as e:
                log.info("verifier: %s", e)
                continue
            timings = {"reexecute": item["reexecute"], "prove": item["prove"], "verify": time.perf_counter() - t0}
            with self.lock:
                self._proved.pop(n, None)
            self._submitted("prove", n, result, timings, {"published_data_source": pub.source,
                                                          "proof_seconds": getattr(proof, "seconds", None)})
