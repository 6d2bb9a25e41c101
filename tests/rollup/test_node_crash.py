"""Durability: kill -9 the node under load, restart it on the same data dir, lose nothing.

"Acknowledged" = the node answered eth_sendRawTransaction with a tx hash. After the restart every
acknowledged tx must be in an L2 block with status 1 and reach hard finality; batches continue
from what L1 says; no batch is committed twice (L1's totals equal the node's batch count and the
roots chain); the previous incarnation's anvil engines were reaped; and every batch's finality fields
(commit/prove/execute tx hash, instant, gas) are filled and equal the L1 receipts, including the steps
that happened on L1 while the node's local record of them was lost (the crash window between an L1
receipt and the local write is reproduced on disk: the test deletes those writes from the crashed node's
store before the restart).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from eth_account import Account as EthAccount

from fixtures.rollup import l1_operator_key
from harness.chain import settlement
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account
from harness.chain.rpc import rpc_call
from harness.rollup.l1 import RollupL1
from harness.rollup.store import NodeDb

from ._l2tx import signed_transfer

pytestmark = [pytest.mark.chain, pytest.mark.slow]
NODE_ARGS = ("--max-blocks", "2", "--max-seconds", "2")
SENDERS = 6  # prefunded dev accounts 10..15 on L2 (nobody else uses them on this private node)


class TransferLoad(threading.Thread):
    """Sends pre-signed transfers in JSON-RPC batches until stopped or the node goes away."""

    def __init__(self, url: str, nonces: dict[str, int], keys: list[bytes], batch: int = 20) -> None:
        super().__init__(daemon=True)
        self.url, self.nonces, self.keys, self.batch = url, nonces, keys, batch
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            body, hashes = [], []
            for k in self.keys:
                a = EthAccount.from_key(k)
                for j in range(self.batch // len(self.keys) or 1):
                    n = self.nonces[a.address] + j
                    s = signed_transfer(k, n)
                    body.append({"jsonrpc": "2.0", "id": len(body), "method": "eth_sendRawTransaction",
                                 "params": [s.raw_transaction.to_0x_hex()]})
                    hashes.append((a.address, s.hash.to_0x_hex()))
            try:
                req = urllib.request.Request(self.url, json.dumps(body).encode(),
                                             {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    replies = {x["id"]: x for x in json.loads(r.read())}
            except Exception as e:  # noqa: BLE001 - the node was killed: stop (in-flight txs are unacknowledged)
                self.errors.append(f"{type(e).__name__}: {e}")
                return
            for i, (addr, h) in enumerate(hashes):
                rep = replies[i]
                if "result" in rep:
                    if rep["result"] != h:
                        self.errors.append(f"node acknowledged {rep['result']} for {h}")
                        return
                    self.acked.append(h)
                    self.nonces[addr] += 1
                else:
                    self.errors.append(str(rep["error"]))
                    return


def wait_all_included(url: str, hashes: list[str], timeout_s: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    got: dict[str, dict] = {}
    while time.monotonic() < deadline:
        for h in hashes:
            if h not in got:
                rc = rpc_call(url, "eth_getTransactionReceipt", [h])
                if rc is not None:
                    got[h] = rc
        if len(got) == len(hashes):
            return got
        time.sleep(0.5)
    missing = [h for h in hashes if h not in got]
    raise AssertionError(f"{len(missing)} acknowledged txs lost after restart, e.g. {missing[:5]}")


def wait_batches_executed(url: str, upto_block: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = rpc_call(url, "zks_getBlockDetails", [upto_block])
        if d and d["status"] == "verified":
            return rpc_call(url, "rollup_status")
        st = rpc_call(url, "rollup_status")
        assert st["halted"] is None, f"pipeline halted: {st['halted']}"
        time.sleep(0.5)
    raise AssertionError(f"block {upto_block} not executed in {timeout_s} s: {rpc_call(url, 'rollup_status')}")


def test_kill9_under_load_then_restart_loses_nothing(private_l1, rollup_node_factory, tmp_path) -> None:
    data_dir = tmp_path / "node"
    node = rollup_node_factory(private_l1.url, l1_operator_key(), data_dir, NODE_ARGS)
    keys = [derive_account(DEFAULT_MNEMONIC, 10 + i).key for i in range(SENDERS)]
    nonces = {EthAccount.from_key(k).address: 0 for k in keys}
    load = TransferLoad(node.url, nonces, keys)
    load.start()
    time.sleep(2.0)
    deadline = time.monotonic() + 90  # kill once at least one batch is executed on L1 and load is running
    while time.monotonic() < deadline and rpc_call(node.url, "rollup_status")["batches"]["executed"] < 1:
        time.sleep(0.25)
    node.kill9()
    load.join(timeout=30)
    acked_before = list(load.acked)
    assert len(acked_before) > 50, f"load too small to mean anything: {len(acked_before)} ({load.errors[:2]})"

    lost_writes = forget_l1_steps(data_dir)
    assert lost_writes, "no batch had reached L1 before the crash"

    node2 = rollup_node_factory(private_l1.url, l1_operator_key(), data_dir, NODE_ARGS)
    st = rpc_call(node2.url, "rollup_status")
    assert st["recovery"]["stale_children_killed"], "the crashed node's anvils were not reaped"
    receipts = wait_all_included(node2.url, acked_before, timeout_s=60)
    assert all(int(r["status"], 16) == 1 for r in receipts.values())

    # keep going after the restart: nonces continue where the node says
    for a in nonces:
        nonces[a] = int(rpc_call(node2.url, "eth_getTransactionCount", [a, "pending"]), 16)
    load2 = TransferLoad(node2.url, nonces, keys)
    load2.start()
    time.sleep(2.0)
    load2.stop_flag.set()
    load2.join(timeout=30)
    assert load2.acked and not load2.errors, load2.errors[:3]
    receipts2 = wait_all_included(node2.url, load2.acked, timeout_s=60)
    last_block = max(int(r["blockNumber"], 16) for r in list(receipts.values()) + list(receipts2.values()))
    st = wait_batches_executed(node2.url, last_block, timeout_s=180)

    # nothing committed twice, roots chain, every tx in exactly one batch
    l1 = RollupL1.attach(private_l1.url, st["rollupAddress"])
    totals = l1.totals()
    assert totals["committed"] >= st["batches"]["executed"] >= 1
    n_batches = rpc_call(node2.url, "zks_L1BatchNumber", [])
    assert totals["committed"] <= int(n_batches, 16)
    prev = None
    seen_blocks: set[int] = set()
    for n in range(1, int(n_batches, 16) + 1):
        b = rpc_call(node2.url, "zks_getL1BatchDetails", [n])
        if prev is not None:
            assert b["prevRootHash"] == prev["rootHash"] and b["firstBlock"] == prev["lastBlock"] + 1
        if n <= totals["committed"]:
            on_l1 = l1.batch(n)
            assert "0x" + bytes(on_l1["new_root"]).hex() == b["rootHash"]
        rng = set(range(b["firstBlock"], b["lastBlock"] + 1))
        assert not (rng & seen_blocks)
        seen_blocks |= rng
        prev = b
    for r in list(receipts.values()) + list(receipts2.values()):
        assert int(r["blockNumber"], 16) in seen_blocks
    check_finality_fields_against_l1(node2.url, l1, private_l1.url, totals["executed"], lost_writes)


def forget_l1_steps(data_dir) -> dict[int, str]:
    """Reproduce the crash window on the crashed node's store: for the first batch executed on L1, drop its
    local commit/prove/execute records and put it back to 'sealed' (as if the node died right after each L1
    receipt, before writing it); for the last batch at least committed, drop its last step's record.
    Returns {batch: status it had}."""
    db = NodeDb(data_dir / "node.sqlite")
    try:
        recs = {n: db.batch(n) for n in db.batch_numbers()}
        done = {n: r for n, r in recs.items() if r["status"] in ("committed", "proven", "executed")}
        if not done:
            return {}
        out = {}
        first, last = min(done), max(done)
        r = done[first]
        out[first] = r["status"]
        for step in ("commit", "prove", "execute"):
            r.pop(step, None)
        r["status"] = "sealed"
        db.put_batch(r)
        if last != first:
            r = done[last]
            out[last] = r["status"]
            step = {"committed": "commit", "proven": "prove", "executed": "execute"}[r["status"]]
            r.pop(step)
            r["status"] = {"commit": "sealed", "prove": "committed", "execute": "proven"}[step]
            db.put_batch(r)
        return out
    finally:
        db.close()


def check_finality_fields_against_l1(url: str, l1: RollupL1, l1_url: str, executed: int,
                                     lost_writes: dict[int, str]) -> None:
    """Every executed batch: tx hashes, instants and gas of all three steps present and equal to L1's
    receipts; the steps rebuilt from L1 are flagged; settlement cost computes."""
    batches = []
    for n in range(1, executed + 1):
        b = rpc_call(url, "zks_getL1BatchDetails", [n])
        assert b["status"] == "verified", b
        for step, past in (("commit", "committed"), ("prove", "proven"), ("execute", "executed")):
            h, gas = b[f"{step}TxHash"], b[f"{step}GasUsed"]
            assert h and gas and b[f"{past}At"] and b[f"{past}AtUnix"], (n, step, b)
            rc = rpc_call(l1_url, "eth_getTransactionReceipt", [h])
            assert rc and int(rc["status"], 16) == 1 and int(rc["gasUsed"], 16) == gas, (n, step, rc)
            assert b[f"{step}L1BlockNumber"] == int(rc["blockNumber"], 16)
            # blob gas as L1's receipt has it (commit carries the batch's blobs under the default --da auto)
            assert b[f"{step}BlobGasUsed"] == int(rc.get("blobGasUsed") or "0x0", 16)
            assert (b[f"{step}BlobGasUsed"] > 0) == (step == "commit" and b.get("dataAvailability", "blobs") == "blobs")
        on_l1 = l1.batch(n)
        assert b["executeL1BlockNumber"] == on_l1["executed_block"] and b["commitL1BlockTimestamp"] == on_l1["committed_at"]
        assert b["committedAtUnix"] <= b["provenAtUnix"] <= b["executedAtUnix"]
        timings = rpc_call(url, "rollup_batchTimings", [n])
        batches.append({**b, "l1_gas": timings["l1_gas"]})
    first = min(lost_writes)
    d = rpc_call(url, "zks_getL1BatchDetails", [first])
    if lost_writes[first] == "executed":  # all three steps of this batch were rebuilt from L1
        assert d["commitRecovered"] and d["proveRecovered"] and d["executeRecovered"], d
    cost = settlement.settlement_cost(batches, 100_000, 2_500_000)  # raised "gas unknown" before
    assert cost["amortized_l1_gas_per_tx"] > 0


def test_sigterm_stops_the_node_and_its_engines(private_l1, rollup_node_factory, tmp_path) -> None:
    import os
    import signal as _signal

    data_dir = tmp_path / "node-term"
    node = rollup_node_factory(private_l1.url, l1_operator_key(), data_dir, NODE_ARGS)
    children = json.loads((data_dir / "children.json").read_text())["pgids"]
    assert len(children) == 3  # L2 engine + prover engine + KZG worker (blob DA)
    os.kill(node.proc.pid, _signal.SIGTERM)  # the node process only, not its group
    assert node.proc.wait(timeout=30) == 0
    node.proc = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pg) for pg in children):
        time.sleep(0.1)
    assert not any(_alive(pg) for pg in children), "engines survived the node's SIGTERM"


def _alive(pgid: int) -> bool:
    import os

    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_acknowledged_tx_refused_on_resubmit_is_loud_and_counted(private_l1, rollup_node_factory, tmp_path) -> None:
    """A WAL tx the engine refuses when the node resubmits it after a restart (here: a signed tx from an
    account with no funds, written into the stopped node's WAL as if it had been acknowledged) is not
    silently dropped: rollup_status counts it with its hash and the engine's error, across restarts."""
    from harness.rollup.store import TxWal

    data_dir = tmp_path / "node-drop"
    node = rollup_node_factory(private_l1.url, l1_operator_key(), data_dir, NODE_ARGS)
    assert rpc_call(node.url, "rollup_status")["txsDroppedAfterAck"] == 0
    node.stop()
    poor = EthAccount.create()
    signed = signed_transfer(poor.key, 0, value=10**18)
    wal = TxWal(data_dir / "wal.log")
    wal.append(bytes(signed.raw_transaction))
    wal.close()
    for _ in range(2):  # the count survives a second restart (it is persisted, not only logged)
        node = rollup_node_factory(private_l1.url, l1_operator_key(), data_dir, NODE_ARGS)
        st = rpc_call(node.url, "rollup_status")
        assert st["txsDroppedAfterAck"] == 1, st
        [ex] = st["txsDroppedAfterAckExamples"]
        assert ex["tx_hash"] == signed.hash.to_0x_hex() and "fund" in json.dumps(ex["error"]).lower(), ex
        node.stop()
    assert "ACKNOWLEDGED TXS DROPPED" in (data_dir / "logs" / "node.log").read_text()


def test_sigterm_during_start_up_stops_at_once(private_l1, tmp_path) -> None:
    """SIGTERM while the node is still starting (its L2 engine is up, the rest not yet) interrupts the
    start-up: the process exits promptly and leaves no engine behind."""
    import os
    import signal as _signal

    from harness import procs
    from harness.rollup.service import REPO, NodeProcess

    data_dir = tmp_path / "node-early-term"
    np_ = NodeProcess(data_dir, l1_url=private_l1.url, l1_key=l1_operator_key(), extra_args=list(NODE_ARGS))
    data_dir.mkdir(parents=True)
    proc = procs.start(np_.command(), np_.log_path, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)
    try:
        children_file = data_dir / "children.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (children_file.is_file() and
                                                   json.loads(children_file.read_text())["pgids"]):
            assert proc.poll() is None, procs.log_tail(np_.log_path)
            time.sleep(0.01)
        pgids = json.loads(children_file.read_text())["pgids"]
        ready_before = (data_dir / "ready.json").is_file()
        os.kill(proc.pid, _signal.SIGTERM)
        rc = proc.wait(timeout=30)
        assert rc in (0, 128 + _signal.SIGTERM), procs.log_tail(np_.log_path)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pg) for pg in pgids):
            time.sleep(0.1)
        assert not any(_alive(pg) for pg in pgids), "an engine survived SIGTERM during start-up"
        print(f"\nSIGTERM {'after' if ready_before else 'during'} start-up: exit code {rc}")
    finally:
        if proc.poll() is None:
            procs.kill_group(proc.pid, proc=proc)
        from harness.rollup.node import kill_stale_children

        kill_stale_children(data_dir)
