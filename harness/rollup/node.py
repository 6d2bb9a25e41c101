"""The embedded ZK rollup node: L2 engine + sequencer + batch pipeline + JSON-RPC, in one process.

Start-up (and restart after kill -9 with the same data dir):
 1. open the WAL and the SQLite store; kill anvils a previous incarnation left behind
    (their pgids are in ``children.json``; checked to be anvil via /proc before killing);
 2. start the L2 engine (anvil, --no-mining, same genesis timestamp as the first run), reached over its
    IPC socket ``engines/l2-engine.ipc`` (see harness/rollup/engine.py: no engine URL is published);
 3. replay every recorded L2 block exactly (same txs, same order, same timestamp);
 4. resubmit every WAL tx not in a recorded block (accepted txs are never lost; one the engine now
    refuses is tombstoned and recorded LOUDLY: ``rollup_status.txsDroppedAfterAck`` counts them across
    restarts, with hashes and the engine's errors, persisted in the store);
 5. switch on interval mining (soft finality), start the block tracker;
 6. align batch statuses with L1 (``RollupL1.totals()``) and rebuild missing L1 step records from L1,
    start the pipeline and the RPC server.

Block tags: ``safe`` and ``finalized`` are answered from L1 settlement, not by the L2 engine:
``safe`` = the last L2 block of the last batch committed on L1, ``finalized`` = the last L2 block of the
last batch executed on L1 in a block L1 itself reports finalized (see ``Pipeline.tag_block``), for every
method that takes a block tag. L1 steps count once ``l1_confirmations`` blocks deep (confirm.py).

Trust model (what this node is): a measurement target, not a production rollup.
The Groth16 proof binds (L1 chain id, Rollup contract address, batch number, prev root, new root,
data hash); the
re-execution check (replaying the published txs on a separate engine and
comparing state diff and root) is done by the prover process outside the
circuit. See harness/rollup/zk for what the circuit proves.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.rollup.batcher import L1Like, Pipeline, ProverLike, stage_summary
from harness.rollup.blobs import release_kzg_worker, use_kzg_worker
from harness.rollup.config import NodeConfig
from harness.rollup.diff_tracer import BlockDiffTracer
from harness.rollup.engine import Engine, EngineConfig, ReplayMismatch
from harness.rollup.finality import batch_details, block_details, genesis_batch_details
from harness.rollup.kzg_worker import KzgWorker
from harness.rollup.merkle import SparseMerkleTree, keccak
from harness.rollup.rpc_server import InvalidParams, RpcServer
from harness.rollup.sequencer import Sequencer
from harness.rollup.stage_clock import StageClock
from harness.rollup.state_diff import genesis_leaves
from harness.rollup.store import NodeDb, TxWal
from harness.rollup.zk import setup as zk_setup

log = logging.getLogger("rollup.node")
CLIENT_VERSION = "harness-rollup/0.1 (anvil L2 engine)"


#: substrings of the command line of the children a node starts (anvil engines; snarkjs / solcjs / circom
#: tools run by harness.rollup.zk.setup.run_tool), checked before killing a recorded pgid (pids get reused)
CHILD_MARKERS = (b"anvil", b"snark.js", b"snarkjs", b"circom", b"solc", b"harness.rollup.kzg_worker")


#: the block tracker's poll of the engine's head (over IPC, ~0.1 ms a call): it bounds how long after the engine
#: seals a block the node records it (soft finality) and pushes it to newHeads subscribers
TRACK_POLL_S = 0.01


def _pid_is_ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(m in cmdline for m in CHILD_MARKERS)


def kill_stale_children(data_dir: Path) -> list[int]:
    """Kill the process groups (anvil engines, prover/compiler tools) a crashed node on this data dir left."""
    f = Path(data_dir) / "children.json"
    killed = []
    if f.is_file():
        try:
            d = json.loads(f.read_text())
            pgids = list(d.get("pgids", [])) + list(d.get("tool_pgids", []))
        except ValueError:
            pgids = []
        for pg in pgids:
            if _pid_is_ours(pg):
                try:
                    os.killpg(pg, signal.SIGKILL)
                    killed.append(pg)
                except ProcessLookupError:
                    pass
    return killed


def _qty(params: list, i: int, name: str) -> int:
    if len(params) <= i:
        raise InvalidParams(f"missing {name}")
    v = params[i]
    if isinstance(v, bool):
        raise InvalidParams(f"{name} must be a number")
    if isinstance(v, int):
        n = v
    elif isinstance(v, str):
        try:
            n = int(v, 16) if v.lower().startswith("0x") else int(v)
        except ValueError:
            raise InvalidParams(f"{name} must be a number, got {v!r}") from None
    else:
        raise InvalidParams(f"{name} must be a number")
    if n < 0 or n >= 2**63:
        raise InvalidParams(f"{name} out of range")
    return n


class Node:
    """The rollup node. ``start()`` then ``stop()`` (stop kills both engines)."""

    def __init__(self, cfg: NodeConfig, l1_factory: Callable[[bytes], L1Like], prover: ProverLike,
                 extra_pgids: list[int] | None = None) -> None:
        """``l1_factory(genesis_root)`` returns the L1 Rollup contract to use (deploying it if needed);
        ``extra_pgids``: other child process groups to record in children.json (an embedded L1)."""
        self.cfg = cfg
        self.extra_pgids = list(extra_pgids or [])
        self.l1_factory, self.prover = l1_factory, prover
        self.l1: L1Like | None = None
        self.engine: Engine | None = None
        self.rpc: RpcServer | None = None
        self.pipeline: Pipeline | None = None
        self.kzg: KzgWorker | None = None
        self.intake_clock = StageClock()  # per-stage durations of the request path (rollup_status.intakeTimings)
        self.db: NodeDb | None = None
        self.wal: TxWal | None = None
        self._stop = threading.Event()
        self._tracker: threading.Thread | None = None
        self.recovery: dict[str, Any] = {}
        self.dropped_after_ack: list[dict] = []
        self.started_at = time.time()
        self._children_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _write_children(self, *_: object) -> None:
        """Record every child process group (engines and the short-lived snarkjs/solcjs tools) in
        children.json, so that the next start on this data dir (or NodeProcess.stop) can reap them after a
        kill -9 of the node. Written atomically (tmp + rename)."""
        with self._children_lock:
            pgids = [e.pgid for e in (self.engine, self.pipeline and self.pipeline.prover_engine) if e and e.pgid]
            pgids += [self.kzg.pgid] if self.kzg is not None and self.kzg.pgid else []
            pgids += self.extra_pgids
            body = json.dumps({"node_pid": os.getpid(), "pgids": pgids, "tool_pgids": zk_setup.live_tool_pgids()})
            f = self.cfg.data_dir / "children.json"
            tmp = f.with_suffix(".tmp")
            tmp.write_text(body)
            tmp.replace(f)

    def start(self) -> Node:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.recovery["stale_children_killed"] = kill_stale_children(cfg.data_dir)
        self.db = NodeDb(cfg.data_dir / "node.sqlite")
        self.wal = TxWal(cfg.data_dir / "wal.log")
        zk_setup.add_tool_listener(self._write_children)
        try:
            self._start_inner()
        except BaseException:
            self.stop()
            raise
        return self

    def _engine_cfg(self) -> EngineConfig:
        e = self.cfg.engine
        ts = self.db.get_meta("genesis_timestamp")
        return EngineConfig(e.chain_id, e.gas_limit, e.accounts, e.balance_eth, e.mnemonic,
                            ts if ts is not None else e.genesis_timestamp, transport=e.transport)

    def _new_engine(self, ecfg: EngineConfig, name: str) -> Engine:
        """A started engine; over IPC (the default) its socket is ``<data dir>/engines/<name>.ipc`` (dir 0700,
        socket 0600)."""
        return Engine(ecfg, self.cfg.data_dir / "logs", name, ipc_dir=self.cfg.data_dir / "engines").start()

    def _start_inner(self) -> None:
        cfg, db = self.cfg, self.db
        stored_chain = db.get_meta("chain_id")
        if stored_chain is not None and stored_chain != cfg.engine.chain_id:
            raise RuntimeError(f"data dir was made for chain {stored_chain}, config says {cfg.engine.chain_id}")
        ecfg = self._engine_cfg()
        if ecfg.transport == "http":
            log.warning("engines reached over HTTP (--engine-transport http): their 127.0.0.1 ports are open "
                        "to every local process, around the sequencer")
        else:
            log.info("engines reached over IPC: unix sockets (mode 0600) in %s", cfg.data_dir / "engines")
        self.engine = self._new_engine(ecfg, "l2-engine")
        self._write_children()
        genesis = self.engine.genesis()
        if db.get_meta("genesis_timestamp") is None:
            db.set_meta("genesis_timestamp", int(genesis["timestamp"], 16))
            db.set_meta("chain_id", cfg.engine.chain_id)
            db.set_meta("genesis_hash", genesis["hash"])
        ecfg.genesis_timestamp = db.get_meta("genesis_timestamp")
        self.wal.clock = self.intake_clock
        self.sequencer = Sequencer(self.wal, self.engine.rpc, cfg.engine.chain_id, cfg.engine.gas_limit,
                                   clock=self.intake_clock)
        raw = self.sequencer.raw_by_hash
        # 3. replay recorded blocks (a block that does not replay, and every later one, is dropped if it was
        #    not yet in a batch: the engine restarts and replays only up to it; its txs are resubmitted in 4.)
        t0 = time.perf_counter()
        replayed, limit = 0, None
        while True:
            replayed, bad = self._replay_recorded(raw, limit)
            if bad is None:
                break
            if db.block(bad)["batch"] is not None:
                raise RuntimeError(f"sealed block {bad} does not replay on a fresh engine")
            log.warning("block %d does not replay; dropping unbatched blocks from %d on", bad, bad)
            self.engine.stop()
            self.engine = self._new_engine(ecfg, "l2-engine")
            self._write_children()
            self.sequencer.engine = self.engine.rpc
            db.delete_blocks_after(bad - 1)
            limit = bad
        # 4. resubmit WAL txs not yet in a block
        included = {h.lower() for b in db.blocks(1) for h in b["tx_hashes"]}
        pending = [(h, r) for h, r in raw.items() if h not in included]
        refused = []
        for i in range(0, len(pending), 200):
            chunk = pending[i:i + 200]
            reps = self.engine.rpc.batch_raw([("eth_sendRawTransaction", ["0x" + r.hex()]) for _, r in chunk])
            for (h, _), rep in zip(chunk, reps, strict=False):
                if "error" in rep:
                    refused.append({"tx_hash": h, "error": rep["error"], "at": time.time()})
        if refused:
            # an ACKNOWLEDGED tx the engine now refuses: record it durably BEFORE tombstoning, so it is never
            # silently gone; rollup_status reports every one, across restarts
            db.set_meta("dropped_after_ack", (db.get_meta("dropped_after_ack") or []) + refused)
            for r in refused:
                self.wal.tombstone(r["tx_hash"])
                raw.pop(r["tx_hash"], None)
            log.error("ACKNOWLEDGED TXS DROPPED: the engine refused %d WAL txs on resubmit after a restart "
                      "(see rollup_status.txsDroppedAfterAck): %s", len(refused), refused[:3])
        self.dropped_after_ack = db.get_meta("dropped_after_ack") or []
        self.recovery.update(replayed_blocks=replayed, resubmitted_txs=len(pending) - len(refused),
                             refused_on_resubmit=len(refused), recovery_s=time.perf_counter() - t0,
                             wal_txs=len(raw))
        if cfg.data_availability == "blobs":  # ckzg holds the GIL for each whole call: its work runs in a child
            self.kzg = KzgWorker(cfg.data_dir / "logs" / "kzg-worker.log")
            self.recovery["kzg_trusted_setup_load_s"] = self.kzg.start()
            self._write_children()
            use_kzg_worker(self.kzg)
        self.engine.start_interval_mining(cfg.block_time_s)
        # tree
        nodes, leaves = db.load_tree()
        accounts = self.engine.rpc.call("eth_accounts")
        self.genesis_leaves = genesis_leaves(self.engine.rpc, accounts)
        if nodes:
            tree = SparseMerkleTree(cfg.tree_depth, nodes, leaves)
        else:  # first start: the genesis state is the tree's first persisted delta
            tree = SparseMerkleTree(cfg.tree_depth)
            db.save_tree(tree.update(self.genesis_leaves), self.genesis_leaves)
        genesis_root = SparseMerkleTree.from_leaves(self.genesis_leaves, cfg.tree_depth).root
        db.set_meta("genesis_root", "0x" + genesis_root.hex())
        last = max(db.batch_numbers(), default=0)
        expect = db.batch(last)["new_root"] if last else "0x" + genesis_root.hex()
        if "0x" + tree.root.hex() != expect:
            raise RuntimeError(f"persisted Merkle tree root 0x{tree.root.hex()} != expected {expect}")
        # L1 + pipeline
        self.l1 = self.l1_factory(genesis_root)
        self.pipeline = Pipeline(cfg, db, raw, self.engine.rpc, tree, self._prover_engine, self.genesis_leaves,
                                 self.l1, self.prover)
        self.pipeline.reconcile_with_l1()
        self._tracker = threading.Thread(target=self._track_blocks, name="block-tracker", daemon=True)
        self._tracker.start()
        if cfg.trace_blocks_ahead:
            tracer = BlockDiffTracer(self.engine.rpc, db.last_block, self.pipeline.next_first_block())
            self.pipeline.diff_tracer = tracer
            self._diff_tracer = threading.Thread(target=tracer.run, args=(self._stop,), name="diff-tracer",
                                                 daemon=True)
            self._diff_tracer.start()
        self.pipeline.start()
        self.rpc = RpcServer(cfg.host, cfg.port, self._handlers(), self.engine.rpc.batch_raw,
                             self.sequencer.submit_many, CLIENT_VERSION, tag_resolver=self.pipeline.tag_block,
                             clock=self.intake_clock, engine_target=self.engine.endpoint,
                             announce_intake=self.wal.announce, adopt_intake=self.wal.adopt)
        self.rpc.start()

    def _replay_recorded(self, raw: dict[str, bytes], limit: int | None) -> tuple[int, int | None]:
        """Replay recorded blocks below ``limit``; returns (blocks replayed, first block that failed or None)."""
        replayed = 0
        for b in self.db.blocks(1, None if limit is None else limit - 1):
            raws = [raw[h.lower()] for h in b["tx_hashes"] if h.lower() in raw]
            if len(raws) != len(b["tx_hashes"]):
                raise RuntimeError(f"block {b['number']}: txs missing from the WAL")
            try:
                blk = self.engine.replay_block(b["number"], b["timestamp"], raws, b["tx_hashes"])
            except ReplayMismatch as e:
                log.warning("%s", e)
                return replayed, b["number"]
            if blk["hash"] != b["hash"]:
                b["hash"] = blk["hash"]
                self.db.add_block(b)
            replayed += 1
        return replayed, None

    def _prover_engine(self) -> Engine:
        eng = self._new_engine(self._engine_cfg(), "prover-engine")
        self.pipeline.prover_engine = eng
        self._write_children()
        return eng

    def stop(self) -> None:
        """Stop everything this node started; safe to call twice and from a signal handler's path."""
        self._stop.set()
        zk_setup.remove_tool_listener(self._write_children)
        for fn in (lambda: self.rpc and self.rpc.stop(), lambda: self.pipeline and self.pipeline.stop(),
                   lambda: self.engine and self.engine.stop(), self._stop_kzg, lambda: self.wal and self.wal.close(),
                   lambda: self.db and self.db.close()):
            try:
                fn()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("while stopping")
        self.rpc = None
        self.engine = None
        self.wal = None
        self.db = None

    def _stop_kzg(self) -> None:
        if self.kzg is not None:
            release_kzg_worker(self.kzg)
            self.kzg.stop()
            self.kzg = None

    @property
    def url(self) -> str:
        return self.rpc.url

    @property
    def ws_url(self) -> str:
        return self.rpc.ws_url

    # -- block tracker (soft finality) -----------------------------------------------------------------------
    def _track_blocks(self) -> None:
        rpc = self.engine.client()
        while not self._stop.is_set():
            try:
                head = int(rpc.call("eth_blockNumber"), 16)
                n = self.db.last_block() + 1
                while n <= head and not self._stop.is_set():
                    b = rpc.call("eth_getBlockByNumber", [hex(n), False])
                    self.db.add_block({"number": n, "hash": b["hash"], "timestamp": int(b["timestamp"], 16),
                                       "tx_hashes": [h.lower() for h in b["transactions"]],
                                       "gas_used": int(b["gasUsed"], 16), "gas_limit": int(b["gasLimit"], 16),
                                       "seen_at": time.time()})
                    if self.rpc is not None:  # newHeads / logs subscribers (WebSocket)
                        self.rpc.publish_block(b)
                    n += 1
            except Exception as e:  # noqa: BLE001 - engine briefly busy; keep tracking
                if not self._stop.is_set():
                    log.warning("block tracker: %s", e)
            self._stop.wait(TRACK_POLL_S)

    # -- RPC handlers ----------------------------------------------------------------------------------------
    def _handlers(self) -> dict:
        return {
            "zks_getBlockDetails": self.rpc_block_details,
            "zks_getL1BatchDetails": self.rpc_batch_details,
            "zks_L1BatchNumber": lambda p: hex(max(self.pipeline.batches, default=0)),
            "zks_getL1BatchBlockRange": self.rpc_batch_range,
            "rollup_status": lambda p: self.status(),
            "rollup_resetIntakeTimings": lambda p: self.intake_clock.reset() or True,
            "rollup_batchTimings": self.rpc_batch_timings,
            "rollup_batch": self.rpc_batch,
        }

    def rpc_block_details(self, params: list) -> dict | None:
        n = _qty(params, 0, "block number")
        b = self.db.block(n) if n > 0 else self._genesis_block()
        if b is None:
            return None
        batch = self.pipeline.batches.get(b["batch"]) if b["batch"] is not None else None
        return block_details(b, batch, max(self.pipeline.batches, default=0) + 1, self._operator_address())

    def _genesis_block(self) -> dict | None:
        """Block 0 as the engine has it (the block tracker records blocks from 1); batch 0 = genesis."""
        cached = getattr(self, "_genesis", None)
        if cached is None:
            g = self.engine.rpc.call("eth_getBlockByNumber", ["0x0", False])
            if g is None:
                return None
            cached = self._genesis = {"number": 0, "hash": g["hash"], "timestamp": int(g["timestamp"], 16),
                                      "tx_hashes": [], "gas_used": int(g["gasUsed"], 16),
                                      "gas_limit": int(g["gasLimit"], 16), "seen_at": self.started_at,
                                      "batch": None}
        return cached

    def _operator_address(self) -> str | None:
        """The sequencer's L1 address (pays commit/prove/execute): ZKsync's ``operatorAddress``."""
        if not hasattr(self, "_operator"):
            from eth_account import Account

            self._operator = Account.from_key(self.cfg.l1_key).address if self.cfg.l1_key else None
        return self._operator

    def rpc_batch_details(self, params: list) -> dict | None:
        n = _qty(params, 0, "batch number")
        if n == 0:  # ZKsync serves its genesis batch; so does this node (root = the contract's genesis root)
            g = self._genesis_block()
            return genesis_batch_details(self.db.get_meta("genesis_root"), g["timestamp"] if g else 0)
        rec = self.pipeline.batches.get(n)
        return batch_details(rec) if rec else None

    def rpc_batch_range(self, params: list) -> list | None:
        """zks_getL1BatchBlockRange: ``[first, last]`` L2 block (hex) of a sealed batch, null otherwise."""
        n = _qty(params, 0, "batch number")
        if n == 0:
            return ["0x0", "0x0"]
        rec = self.pipeline.batches.get(n)
        return [hex(rec["first_block"]), hex(rec["last_block"])] if rec else None

    def rpc_batch_timings(self, params: list) -> dict | None:
        rec = self.pipeline.batches.get(_qty(params, 0, "batch number"))
        if rec is None:
            return None
        return {"number": rec["number"], "status": rec["status"], "timings_s": rec["timings"],
                "tree_breakdown_s": rec.get("tree_breakdown_s"), "block_trace": rec.get("block_trace"),
                "tx_count": rec["tx_count"], "block_count": rec["block_count"],
                "leaves_touched": rec["leaves_touched"], "raw_bytes": rec["raw_bytes"],
                "compressed_bytes": rec["compressed_bytes"], "compression_ratio": rec["compression_ratio"],
                "proof_seconds": rec.get("proof_seconds"),
                "l1_gas": {k: (rec.get(k) or {}).get("gas_used") for k in ("commit", "prove", "execute")},
                "l1_blob_gas": {k: (rec.get(k) or {}).get("blob_gas_used") for k in ("commit", "prove", "execute")},
                "data_availability": rec.get("data_availability", "calldata"),
                "published_data_source": rec.get("published_data_source")}

    def rpc_batch(self, params: list) -> dict | None:
        return self.pipeline.batches.get(_qty(params, 0, "batch number"))

    def status(self) -> dict:
        p = self.pipeline
        with p.lock:
            recs = list(p.batches.values())
        return {
            "l2Head": self.db.last_block(), "l2ChainId": self.cfg.engine.chain_id,
            "batches": p.counts(), "l1Totals": p.l1_totals, "rollupAddress": getattr(self.l1, "address", None),
            "walBytes": self.wal.size_bytes, "walRecords": len(self.wal.records), "walFsyncs": self.wal.fsyncs,
            "walDelayedSyncs": self.wal.delayed_syncs,
            "kzgWorker": self.kzg.stats() if self.kzg is not None else None,
            "intakeTimings": self.intake_clock.summary(),
            "txsAccepted": self.sequencer.accepted, "txsRejected": self.sequencer.rejected,
            "txsKnown": len(self.sequencer.raw_by_hash), "stageTimings": stage_summary(recs),
            "errors": dict(p.errors), "halted": p.halted, "recovery": self.recovery,
            "txsDroppedAfterAck": len(self.dropped_after_ack),
            "txsDroppedAfterAckExamples": self.dropped_after_ack[:20],
            "sealingCriteria": {"max_blocks": self.cfg.criteria.max_blocks, "max_txs": self.cfg.criteria.max_txs,
                                "max_bytes": self.cfg.criteria.max_bytes,
                                "max_seconds": self.cfg.criteria.max_seconds},
            "l2BlockTime_s": self.cfg.block_time_s, "dataAvailability": self.cfg.data_availability,
            "dataAvailabilityReason": self.cfg.data_availability_reason,
            "compression": self.cfg.compression,
            "blockTags": {"safe": p.tag_block("safe"), "finalized": p.tag_block("finalized")},
            "l1Settlement": p.confirmer.status(),
            "uptime_s": time.time() - self.started_at, "dataDir": str(self.cfg.data_dir),
            "genesisRoot": self.db.get_meta("genesis_root"),
            # no engine URL is published: the engines take any tx and cheat method from whoever reaches them,
            # around the sequencer's WAL. They are reached over IPC (0600 sockets in <dataDir>/engines);
            # anvil's HTTP listener cannot be switched off and stays on an OS-assigned 127.0.0.1 port that
            # this process never reads (see harness/rollup/engine.py)
            "engineTransport": self.engine.transport if self.engine is not None else None,
            "rpc": self.rpc.stats() if self.rpc is not None else None,
        }


def data_hash(blob: bytes) -> bytes:
    return keccak(blob)
