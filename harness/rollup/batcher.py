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

import copy
import logging
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from harness.rollup.compress import BatchData, compress, decompress
from harness.rollup.config import BatchCriteria, NodeConfig
from harness.rollup.confirm import Confirmer, L1Steps
from harness.rollup.engine import Engine, JsonRpcClient, ReplayMismatch
from harness.rollup.merkle import SparseMerkleTree, TreeUndo, keccak
from harness.rollup.state_diff import blocks_state_diff
from harness.rollup.store import NodeDb

log = logging.getLogger("rollup.batcher")

STAGES = ("seal", "state_diff", "tree", "compress", "persist", "commit", "reexecute", "prove", "verify",
          "execute")
SEALING_STAGES = ("seal", "state_diff", "tree", "compress", "persist")
L1_STEPS = ("commit", "prove", "execute")
#: refusal texts older nodes persisted for what was an L1 state read (lagging or reorged), not a mismatch
TRANSIENT_REFUSALS = ("is not committed on L1",)
#: re-execution may run this many batches ahead of proving
PROOF_QUEUE = 2



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

class L1Like(Protocol):
    """The subset of harness.rollup.l1.RollupL1 the node uses."""

    address: str
    chain_id: int  # L1's chain id: with ``address`` it names the deployment a proof is bound to

    def commit_batch(self, sender_key: str, batch_number: int, prev_root: bytes, new_root: bytes,
                     data: bytes) -> Any: ...
    def commit_batch_blobs(self, sender_key: str, batch_number: int, prev_root: bytes, new_root: bytes,
                           data: bytes) -> Any: ...
    def prove_batch(self, sender_key: str, batch_number: int, proof: Any) -> Any: ...
    def execute_batch(self, sender_key: str, batch_number: int) -> Any: ...
    def totals(self) -> dict[str, int]: ...
    def batch(self, n: int) -> dict: ...
    def step_tx(self, n: int, step: str) -> Any: ...
    def published_batch(self, n: int, local_data: bytes | None = None) -> Any: ...
    def head(self) -> int: ...
    def finalized_block(self) -> int | None: ...
    def block_hashes(self, numbers: list[int]) -> dict[int, str | None]: ...


class ProverLike(Protocol):
    def prove(self, batch_number: int, prev_root: bytes, new_root: bytes, data_hash: bytes, *,
              chain_id: int, rollup_address: str) -> Any: ...


class ProofRefused(RuntimeError):
    """Re-execution of a published batch did not reproduce its state diff or root (or its data on L1
    could not be read back / does not match the hash L1 stored)."""


class L1Divergence(RuntimeError):
    """L1 holds a batch whose roots differ from this node's record of it: the node cannot continue."""


class StageAbort(Exception):
    """What a stage was doing no longer applies (an L1 reorg undid a step, a lower batch must be sent
    again): the stage picks its next batch afresh (the prover starts over)."""


def _jsonable(x: Any) -> Any:
    if isinstance(x, (bytes, bytearray)):
        return "0x" + bytes(x).hex()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "hex") and not isinstance(x, (int, float, str)):
        h = x.hex()
        return h if h.startswith("0x") else "0x" + h
    return x


_L1_FIELDS = ("tx_hash", "block_number", "block_hash", "block_timestamp", "gas_used", "blob_gas_used",
              "gas_limit", "calldata_bytes", "status", "seconds")


def l1_result(res: Any) -> dict:
    """An L1TxResult as a JSON-able dict, plus ``at``: the local unix time the receipt came back
    (``at_source: "local_receipt"``). Gas in gas units; ``blob_gas_used`` is EIP-4844 blob gas (0 for
    calldata), kept apart from execution gas (``gas_used``)."""
    out = {k: _jsonable(getattr(res, k, None)) for k in _L1_FIELDS}
    out["blob_gas_used"] = out["blob_gas_used"] or 0
    out["at"] = time.time()
    out["at_source"] = "local_receipt"
    out["recovered"] = False
    return out


def recovered_l1_result(res: Any) -> dict:
    """A step rebuilt from L1 after a restart (RollupL1.step_tx): real tx hash, gas, blob gas and L1 block;
    ``at`` is the L1 block's timestamp (whole seconds; the local receipt time was lost with the crash)."""
    out = {k: _jsonable(getattr(res, k, None)) for k in _L1_FIELDS}
    out["blob_gas_used"] = out["blob_gas_used"] or 0
    out["at"] = float(res.block_timestamp)
    out["at_source"] = "l1_block_timestamp"
    out["recovered"] = True
    return out


def stage_summary(recs: list[dict]) -> dict[str, dict[str, float]]:
    """Per stage: n, mean/median/p90/max in seconds over the given batch records."""
    out = {}
    for st in STAGES:
        xs = sorted(r["timings"][st] for r in recs if st in r.get("timings", {}))
        if xs:
            out[st] = {"n": len(xs), "mean_s": statistics.fmean(xs), "median_s": statistics.median(xs),
                       "p90_s": xs[min(len(xs) - 1, int(0.9 * len(xs)))], "max_s": xs[-1]}
    return out


class Pipeline(L1Steps):
    """Owns the batch records and runs the four stage threads."""

    def __init__(self, cfg: NodeConfig, db: NodeDb, raw_by_hash: dict[str, bytes], l2: JsonRpcClient,
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
            from harness.rollup.l1 import blob_data_hash, blob_versioned_hashes, encode_blobs

            return blob_data_hash(blob_versioned_hashes(encode_blobs(blob)))
        return keccak(blob)

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
        done = self.prover_done = 0
        while not self.stop_event.is_set():
            with self.lock:
                rec = self.batches.get(done + 1)
                sent = rec is not None and self.confirmer.is_inflight("prove", rec["number"])
            if rec is None or not (rec["status"] in ("proven", "executed") or sent):
                break
            self._replay_on_prover(self.published(rec["number"], reset), ptree)
            done = self.prover_done = done + 1
        while not self.stop_event.is_set():
            if reset():
                raise StageAbort("an L1 reorg undid a commit or a proof: the prover starts over")
            with self.lock:
                rec = copy.deepcopy(self.batches.get(done + 1) or {})
            if rec.get("status") != "committed" or self.confirmer.is_inflight("prove", done + 1):
                self.stop_event.wait(0.05)
                continue
            n = rec["number"]

            def abort(n: int = n) -> bool:
                return reset() or self.batches[n]["status"] != "committed"

            t0 = time.perf_counter()
            try:
                pub = self.published(n, abort)
                self.prover_done = n  # from here its tree holds batch n (a reorg of n must restart it)
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
