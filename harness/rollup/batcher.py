"""The batch pipeline: seal -> commit (L1) -> re-execute + prove -> verify (L1) -> execute (L1).

One thread per stage, each working on the lowest batch waiting for it, so
batches keep flowing (batch n+1 is sealed while batch n is being proven; re-execution, proving and
L1 verification are three threads too, so batch n+1 is re-executed while batch n is proven and batch
n-1 verified: a pipeline that ran them in one thread fell behind at full load, its per-batch sum
exceeding the batch cadence). Every stage's wall time is recorded in the batch record, in seconds:

  seal        gather the blocks' raw txs from the WAL index
  state_diff  merge the blocks' state diffs, traced block by block as the blocks were recorded
              (diff_tracer.py; ``trace_replayBlockTransactions`` stateDiff, see state_diff.py for why
              not geth's prestateTracer); a block not traced yet is traced here
  tree        the sparse Merkle tree's work for the batch: hashing and the changed-node delta in memory,
              plus writing those nodes and leaves to its store (ZKsync's ``waiting_for_tree``: its
              tree component computes and persists the tree in RocksDB); the two parts are kept
              apart in the record's ``tree_breakdown_s`` (``hash``, ``write``)
  compress    RLP-encode blocks + diff, compress, fsync the batch file
  persist     the rest of the one SQLite transaction: batch record, block -> batch map, and the
              commit (fsync) of everything, tree rows included
  commit      RollupL1.commit_batch (calldata) or commit_batch_blobs (EIP-4844 blobs), send + receipt
  reexecute   read the batch back FROM L1 (the commit transaction's calldata, or its blobs), check it
              against the dataHash the contract stored, replay it on the prover's own engine and check
              the state diff and root against L1's record (the prover REFUSES on any mismatch)
  prove       Groth16Prover.prove (for the commitment L1 derives from its stored record)
  verify      RollupL1.prove_batch (on-chain proof verification)
  execute     RollupL1.execute_batch (hard finality)

L1 calls are retried with exponential backoff while L1 is unreachable; before
every (re)try the stage asks L1 whether the batch already went through, so a
crash between the L1 tx and the local record never commits anything twice. A
step found done on L1 (after a restart, or by the retry check) is rebuilt from
L1 alone: tx hash, gas and blob gas from the receipt, the time from the L1
block's timestamp (``at_source: "l1_block_timestamp"``).

A step counts as done only once its receipt is ``NodeConfig.l1_confirmations`` blocks deep and its block
still canonical (harness/rollup/confirm.py; 0: at the receipt). A step lost to an L1 reorg is sent again.
What L1 says about a batch's state ("not committed", "out of order") is never a halt: it is retried (L1
may lag or have reorged). The node halts only when re-executing the data L1 published disagrees with
what L1 stored, or L1 stores other roots than this node sealed.

A seal is transactional: the tree is updated with an undo log and put back if
anything fails before the SQLite commit, and the batch file is removed.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.chain.rpc import Rpc
from harness.rollup.config import NodeConfig
from harness.rollup.confirm import Confirmer, L1Steps
from harness.rollup.engine import Engine
from harness.rollup.merkle import SparseMerkleTree
from harness.rollup.pipeline_common import (
    L1_STEPS,
    PROOF_QUEUE,
    SEALING_STAGES,
    STAGES,
    TRANSIENT_REFUSALS,
    L1Divergence,
    L1Like,
    ProofRefused,
    ProverLike,
    StageAbort,
    l1_result,
    recovered_l1_result,
    stage_summary,
)
from harness.rollup.prover_stages import ProveStages
from harness.rollup.sealer import SealStage, pick_batch
from harness.rollup.store import NodeDb

log = logging.getLogger("rollup.batcher")


class Pipeline(SealStage, ProveStages, L1Steps):
    """Owns the batch records and runs the four stage threads."""

    def __init__(self, cfg: NodeConfig, db: NodeDb, raw_by_hash: dict[str, bytes], l2: Rpc,
                 tree: SparseMerkleTree, prover_engine_factory: Callable[[], Engine], genesis: dict[bytes, bytes],
                 l1: L1Like, prover: ProverLike) -> None:
        self.cfg, self.db, self.raw_by_hash, self.l2 = cfg, db, raw_by_hash, l2
        self.tree, self.genesis = tree, genesis
        self.prover_engine_factory = prover_engine_factory
        self.prover_engine: Engine | None = None
        self._prover_engine_fresh = False
        self.l1, self.prover = l1, prover
        self.blob_dir = cfg.data_dir / "batches"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.batches: dict[int, dict] = {n: db.batch(n) for n in db.batch_numbers()}
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: dict[str, str] = {}
        self.halted: str | None = None
        self.confirmer = Confirmer(self)
        self.prover_reset = threading.Event()  # set when a reorg undid a commit or prove: the prover starts over
        self.prover_done = 0  # the prover's replay tree holds batches 1..prover_done
        for r in self.batches.values():  # refusals an older node persisted for an L1 STATE read: not refusals
            if r["status"] == "refused" and any(t in (r.get("refusal") or "") for t in TRANSIENT_REFUSALS):
                log.warning("batch %d: clearing a persisted refusal that was an L1 state read: %s", r["number"],
                            r["refusal"])
                r["status"] = "committed"
                r["refusal_cleared"] = {"refusal": r.pop("refusal"), "at": time.time()}
                db.put_batch(r)
        refused = [r for r in self.batches.values() if r["status"] == "refused"]
        if refused:  # a refusal survives restarts: the node never proves past a batch it refused
            r = min(refused, key=lambda r: r["number"])
            self.halted = f"batch {r['number']} refused (persisted): {r.get('refusal')}"
            self.errors["prover"] = self.halted
        self.l1_totals: dict[str, int] = {}
        self.diff_tracer = None  # a diff_tracer.BlockDiffTracer, set by the node; None: trace at seal
        self._to_prove: queue.Queue = queue.Queue(maxsize=PROOF_QUEUE)  # re-executed, waiting for a proof
        self._proved: dict[int, dict] = {}  # proof made, waiting for L1 verification
        self._proof_pending: dict | None = None  # the batch the proof stage is on (retried after a restart)

    # -- records ---------------------------------------------------------------------------------------------
    def save(self, rec: dict) -> None:
        with self.lock:
            self.batches[rec["number"]] = rec
            self.db.put_batch(rec)

    def lowest(self, status: str) -> dict | None:
        with self.lock:
            for n in sorted(self.batches):
                if self.batches[n]["status"] == status:
                    return dict(self.batches[n])
        return None

    def counts(self) -> dict[str, int]:
        order = ["sealed", "committed", "proven", "executed"]
        with self.lock:
            recs = list(self.batches.values())
        out = {s: 0 for s in order}
        for r in recs:
            if r["status"] in order:
                for s in order[: order.index(r["status"]) + 1]:
                    out[s] += 1
        out["refused"] = sum(r["status"] == "refused" for r in recs)
        return out

    def blob(self, n: int) -> bytes:
        return (self.blob_dir / f"{n}.bin").read_bytes()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def reconcile_with_l1(self) -> None:
        """After a restart: align local statuses with what L1 says (L1 is the truth), and rebuild every
        L1 step record that is missing or incomplete (no tx hash / gas) from L1 (``RollupL1.step_tx``).
        A step this node recorded whose L1 block is no longer canonical and that L1 no longer has (an L1
        reorg while the node was down) is undone here and sent again by the stages."""
        totals = self._retry("totals", self.l1.totals)
        self.l1_totals = dict(totals)
        nums = sorted(self.batches)
        if totals.get("committed", 0) > (nums[-1] if nums else 0):
            raise RuntimeError(f"L1 has {totals['committed']} batches committed but this data dir only "
                               f"{len(nums)}: wrong data dir or wrong Rollup contract")
        self._retry("reorg_check", lambda: self.confirmer._deep_scan(self.l1.head()))
        order = ["sealed", "committed", "proven", "executed"]
        for n in nums:
            rec = self.batches[n]
            changed = False
            if rec.get("refusal_cleared") and rec["status"] == "committed" and totals.get("committed", 0) < n:
                rec["status"] = "sealed"  # its commit is not on L1 (the old refusal's reason): send it again
                rec.setdefault("l1_undone", []).append({"step": "commit", **rec.pop("commit", {})})
                changed = True
            for step, status, total in (("commit", "committed", "committed"), ("prove", "proven", "proven"),
                                        ("execute", "executed", "executed")):
                if totals.get(total, 0) < n:
                    continue
                if rec["status"] in order and order.index(rec["status"]) < order.index(status):
                    rec["status"] = status
                    rec.setdefault("recovered", []).append(status)
                    changed = True
                have = rec.get(step) or {}
                if not have.get("tx_hash") or have.get("gas_used") is None:
                    rec[step] = self._recover_step(n, step)
                    changed = True
                if step == "commit":
                    extra = self._check_l1_roots(rec)
                    changed = changed or bool(extra)
                    rec.update(extra)
            if changed:
                self.save(rec)
        self.prover_reset.clear()  # nothing runs yet: the prover starts from what the records say now

    def _recover_step(self, n: int, step: str, abort: Callable[[], bool] | None = None) -> dict:
        """The record of an L1 step that L1 says happened, rebuilt from L1 (retried while L1 is down, or
        while its state and its logs disagree: two reads from either side of a reorg)."""
        def get() -> Any:
            res = self.l1.step_tx(n, step)
            if res is None:
                raise RuntimeError(f"batch {n}: L1 reports step {step!r} done but has no record of it (yet)")
            return res

        return recovered_l1_result(self._retry(f"recover_{step}", get, abort=abort))

    def _check_l1_roots(self, rec: dict, abort: Callable[[], bool] | None = None) -> dict:
        """L1's stored roots for a committed batch must be this node's; data-hash differences are left to
        the prover, which re-executes what L1 published. Returns fields for the record. A batch L1 (as
        read now) does not hold is retried, never compared (its zero roots are no divergence)."""
        from harness.rollup.l1 import BatchNotCommitted

        def read() -> dict:
            on = self.l1.batch(rec["number"])
            if not on.get("committed", True):
                raise BatchNotCommitted(f"batch {rec['number']} is not committed on L1 (as read now)")
            return on

        on_l1 = self._retry("batch_read", read, abort=abort)
        got = {k: "0x" + bytes(on_l1[k]).hex() for k in ("prev_root", "new_root", "data_hash")}
        if (got["prev_root"], got["new_root"]) != (rec["prev_root"], rec["new_root"]):
            msg = (f"L1 batch {rec['number']} has roots {got['prev_root']} -> {got['new_root']}, this node "
                   f"sealed {rec['prev_root']} -> {rec['new_root']}: the node's chain is not the one on L1")
            self.halted = msg
            raise L1Divergence(msg)
        local = rec.get("l1_data_hash", rec["data_hash"])
        if got["data_hash"] != local:
            self.errors["commit"] = (f"batch {rec['number']}: L1 stores dataHash {got['data_hash']}, the node "
                                     f"sealed {local}; the prover re-executes L1's data")
            return {"l1_data_hash_differs": {"l1": got["data_hash"], "local": local}}
        return {}

    def start(self) -> None:
        """Start the prover's engine (before the node reports ready), then the stage threads and the L1
        confirmer."""
        self.prover_engine = self.prover_engine_factory()
        self._prover_engine_fresh = True
        for name, fn in (("sealer", self._sealer), ("committer", self._committer), ("prover", self._prover),
                         ("proof", self._proof_maker), ("verifier", self._verifier), ("executor", self._executor),
                         ("confirmer", self.confirmer.run)):
            t = threading.Thread(target=self._guard, args=(name, fn), name=f"rollup-{name}", daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        for t in self.threads:
            t.join(timeout=10)
        if self.prover_engine is not None:
            self.prover_engine.stop()

    def _guard(self, name: str, fn: Callable[[], None]) -> None:
        while not self.stop_event.is_set():
            try:
                fn()
                return
            except (ProofRefused, L1Divergence) as e:
                self.halted = str(e)
                self.errors[name] = str(e)
                log.error("%s halted: %s", name, e)
                return
            except StageAbort as e:  # a reorg changed what the stage works on: start it over at once
                log.info("stage %s starts over: %s", name, e)
            except Exception as e:  # noqa: BLE001 - a stage never dies silently; it records and restarts
                self.errors[name] = f"{type(e).__name__}: {e}"
                log.exception("stage %s failed; restarting it in 1 s", name)
                self.stop_event.wait(1.0)

    def _retry(self, what: str, fn: Callable[[], Any], done: Callable[[], bool] | None = None,
               no_retry: tuple[type[BaseException], ...] = (), abort: Callable[[], bool] | None = None) -> Any:
        """Call ``fn`` until it succeeds (exponential backoff); ``done()`` short-circuits a retry (and the
        call then returns None); exceptions of the ``no_retry`` types propagate at once; ``abort()`` true
        before a (re)try raises StageAbort (the batch was demoted by a reorg, or a lower one needs sending)."""
        delay = 0.25
        first = True
        while not self.stop_event.is_set():
            try:
                if abort is not None and abort():
                    self.errors.pop(what, None)
                    raise StageAbort(f"{what}: the batch changed under it (L1 reorg)")
                if not first and done is not None and done():
                    return None
                first = False
                res = fn()
                if getattr(res, "status", 1) in (0, False):
                    raise RuntimeError(f"{what}: L1 tx reverted: {l1_result(res)}")
                self.errors.pop(what, None)
                return res
            except (StageAbort, *no_retry):
                raise
            except Exception as e:  # noqa: BLE001 - L1 unreachable, reverted, lagging, reorged ...
                self.errors[what] = f"{type(e).__name__}: {e}"
                log.warning("%s failed (%s); retrying in %.2f s", what, e, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.cfg.l1_retry_max_s)
        raise InterruptedError("node stopping")

    def _l1_done(self, stage: str, n: int) -> Callable[[], bool]:
        def done() -> bool:
            t = self.l1.totals()
            self.l1_totals = dict(t)
            return t.get(stage, 0) >= n
        return done

    # -- stage 2: committer ----------------------------------------------------------------------------------
    def _committer(self) -> None:
        while not self.stop_event.is_set():
            rec = self._next_to_send("commit")
            if rec is None:
                self.stop_event.wait(0.05)
                continue
            try:
                self._commit_one(rec)
            except StageAbort as e:
                log.info("committer: %s", e)

    def _commit_one(self, rec: dict) -> None:
        n = rec["number"]
        blob = self.blob(n)
        abort = self._not_next("commit", n)
        t0 = time.perf_counter()
        commit = self.l1.commit_batch_blobs if rec.get("data_availability") == "blobs" else self.l1.commit_batch
        result, rebuilt = self._send_step("commit", "commit", n, lambda: commit(
            self.cfg.l1_key, n, bytes.fromhex(rec["prev_root"][2:]), bytes.fromhex(rec["new_root"][2:]), blob),
            abort)
        took = time.perf_counter() - t0
        extra = self._check_l1_roots(rec, abort) if rebuilt else {}
        self._submitted("commit", n, result, {"commit": took}, extra)

    # -- stage 4: executor -----------------------------------------------------------------------------------
    def _executor(self) -> None:
        while not self.stop_event.is_set():
            rec = self._next_to_send("execute")
            if rec is None:
                self.stop_event.wait(0.05)
                continue
            n = rec["number"]
            t0 = time.perf_counter()
            try:
                result, _ = self._send_step("execute", "execute", n,
                                            lambda n=n: self.l1.execute_batch(self.cfg.l1_key, n),
                                            self._not_next("execute", n))
            except StageAbort as e:
                log.info("executor: %s", e)
                continue
            self._submitted("execute", n, result, {"execute": time.perf_counter() - t0})

    # -- block tags ------------------------------------------------------------------------------------------
    def tag_block(self, tag: str) -> int:
        """The L2 block a settlement tag names: ``safe`` = last L2 block of the last batch committed on L1
        (its data is on L1: OP Stack's "safe", ZKsync's ``l1_committed``), ``finalized`` = last L2 block of
        the last batch executed on L1 in a block at or below L1's own ``finalized`` block (so a reorg L1
        may still have cannot undo it; an L1 without the tag: ``l1_confirmations`` below its head). 0
        (genesis, which the Rollup contract holds as its genesis root) before any batch reached that step."""
        if tag == "finalized":
            fin = self.confirmer.finalized
            if fin is None:
                return 0
            with self.lock:
                return max((r["last_block"] for r in self.batches.values() if r["status"] == "executed"
                            and ((r.get("execute") or {}).get("block_number") or fin + 1) <= fin), default=0)
        want = {"safe": ("committed", "proven", "executed")}[tag]
        with self.lock:
            return max((r["last_block"] for r in self.batches.values() if r["status"] in want), default=0)


def blob_path(data_dir: Path, n: int) -> Path:
    return Path(data_dir) / "batches" / f"{n}.bin"


__all__ = [
    "L1_STEPS",
    "PROOF_QUEUE",
    "SEALING_STAGES",
    "STAGES",
    "TRANSIENT_REFUSALS",
    "L1Divergence",
    "L1Like",
    "ProofRefused",
    "ProverLike",
    "StageAbort",
    "l1_result",
    "recovered_l1_result",
    "stage_summary",
    "Pipeline",
    "blob_path",
    "pick_batch",
]
