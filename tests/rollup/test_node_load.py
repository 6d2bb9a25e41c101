"""The node under the swap load generator: stability with 16 generator instances, and L1 cost per swap.

Each test brings up its own L1 + node (private data dir), deploys Uniswap V2 on L2, funds the load
accounts, runs harness.chain.loadgen, waits until every batch holding the load is executed on L1,
and writes a JSON record under reports/results/rollup/.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from fixtures.rollup import l1_operator_key
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account, derive_accounts
from harness.chain.loadgen import LoadConfig, run_load
from harness.chain.rpc import rpc_call
from harness.chain.uniswap import deploy_uniswap, fund_and_approve

pytestmark = [pytest.mark.chain, pytest.mark.slow]
RESULTS = Path(__file__).resolve().parents[2] / "reports" / "results" / "rollup"


def bring_up(private_l1, rollup_node_factory, extra_args: tuple[str, ...], cfg: LoadConfig):
    node = rollup_node_factory(private_l1.url, l1_operator_key(), None, extra_args)
    deployer = derive_account(DEFAULT_MNEMONIC, 0)
    dep = deploy_uniswap(node.url, deployer)
    accts = derive_accounts(DEFAULT_MNEMONIC, cfg.account_base, cfg.instances * cfg.accounts_per_instance)
    fund_and_approve(node.url, dep, deployer, accts)
    return node, dep


def wait_executed_through(url: str, block: int, timeout_s: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = rpc_call(url, "rollup_status")
        assert st["halted"] is None, st["halted"]
        d = rpc_call(url, "zks_getBlockDetails", [block])
        if d and d["status"] == "verified":
            return st
        time.sleep(1.0)
    raise AssertionError(f"block {block} not executed within {timeout_s} s: {rpc_call(url, 'rollup_status')}")


def batches_covering(url: str, first_block: int, last_block: int) -> list[dict]:
    out = []
    n = int(rpc_call(url, "zks_L1BatchNumber", []), 16)
    for i in range(1, n + 1):
        b = rpc_call(url, "zks_getL1BatchDetails", [i])
        if b["lastBlock"] >= first_block and b["firstBlock"] <= last_block:
            b["timings_s"] = rpc_call(url, "rollup_batchTimings", [i])["timings_s"]
            out.append(b)
    return out


def write_record(name: str, rec: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(rec, indent=1, default=str))
    return p


def load_blocks(result) -> tuple[int, int]:
    nums = [t.block_number for t in result.txs if t.block_number is not None]
    return min(nums), max(nums)


def test_16_generator_instances_lose_nothing(private_l1, rollup_node_factory) -> None:
    # one HTTP request per tx (like the paper's generators): 16 concurrent keep-alive clients.
    # This test is about accounting (nothing accepted is lost), not inclusion latency: with 16 sender
    # processes, the node and two anvils on 2 cores the block observer's poll can lag past 1 s (seen
    # once in CI: 1.53 s), so the sub-second observation bound is not enforced here; the measured
    # uncertainty is still printed. The claims that use inclusion times (B3/B4/B6) keep it.
    cfg = LoadConfig(workload="swap", instances=16, accounts_per_instance=3, txs_per_account=20,
                     send_mode="single", drain_timeout_s=120, max_inclusion_uncertainty_s=None)
    node, dep = bring_up(private_l1, rollup_node_factory, ("--max-blocks", "5", "--max-seconds", "5"), cfg)
    res = run_load(node.url, cfg, DEFAULT_MNEMONIC, dep)  # raises if an accepted tx never got a receipt
    m = res.metrics
    first, last = load_blocks(res)
    st = wait_executed_through(node.url, last)
    batches = batches_covering(node.url, first, last)
    accepted = sum(t.accepted for t in res.txs)
    included = sum(t.block_number is not None for t in res.txs)
    failed = sum(t.status == 0 for t in res.txs)
    rec = {"instances": cfg.instances, "sent": len(res.txs), "accepted": accepted, "included": included,
           "reverted": failed, "metrics": m, "node_status": st, "batches": batches}
    path = write_record("stability-16-instances", rec)
    print(f"\n16 instances: sent={len(res.txs)} accepted={accepted} included={included} reverted={failed} "
          f"send_rate_tps={m.get('send_rate_tps')} tps_paper_formula={m.get('tps_paper_formula')} "
          f"latency_p50_s={m.get('latency_p50_s')} latency_max_s={m.get('latency_max_s')} "
          f"inclusion_uncertainty_max_s={m.get('inclusion_uncertainty_max_s')} "
          f"run_blocks={m.get('run_blocks')} batches={len(batches)} record={path}")
    assert accepted == len(res.txs), "the sequencer refused txs under load"
    assert included == accepted and failed == 0
    assert st["txsRejected"] == 0


@pytest.mark.parametrize("max_txs", [50, 200, 500])
def test_amortized_l1_gas_per_swap(private_l1, rollup_node_factory, max_txs: int) -> None:
    # open loop at 60 swaps/s so that L2 blocks hold ~60 swaps: a batch is made of whole blocks, so the
    # max_txs criterion can only cut at block boundaries (a batch overshoots by at most one block)
    cfg = LoadConfig(workload="swap", instances=2, accounts_per_instance=10, txs_per_account=60,
                     send_mode="single", loop="open", target_tps=60, drain_timeout_s=120)
    node, dep = bring_up(private_l1, rollup_node_factory,
                         ("--max-txs", str(max_txs), "--max-blocks", "1000", "--max-seconds", "30", "--max-bytes", "10000000"), cfg)
    res = run_load(node.url, cfg, DEFAULT_MNEMONIC, dep)
    first, last = load_blocks(res)
    wait_executed_through(node.url, last)
    covering = batches_covering(node.url, first, last)
    batches = [b for b in covering if b["l2TxCount"] >= max_txs]
    if not batches:
        write_record(f"amortized-gas-max-txs-{max_txs}", {"max_txs": max_txs, "full_batches": 0,
                                                          "batches": covering})
    assert batches, f"no full batch: sizes {[b['l2TxCount'] for b in covering]}"
    gas = {k: [b[f"{k}GasUsed"] for b in batches] for k in ("commit", "prove", "execute")}
    txs = sum(b["l2TxCount"] for b in batches)
    per_swap = {k: sum(v) / txs for k, v in gas.items()}
    per_swap["total"] = sum(per_swap.values())
    stage = {s: statistics.median(b["timings_s"][s] for b in batches) for s in batches[0]["timings_s"]}
    rec = {"max_txs": max_txs, "full_batches": len(batches), "swaps_in_full_batches": txs,
           "gas_per_batch_median": {k: statistics.median(v) for k, v in gas.items()},
           "amortized_l1_gas_per_swap": per_swap,
           "compressed_bytes_per_swap": sum(b["compressedBytes"] for b in batches) / txs,
           "compression_ratio_median": statistics.median(b["compressionRatio"] for b in batches),
           "stage_median_s": stage, "batches": batches}
    path = write_record(f"amortized-gas-max-txs-{max_txs}", rec)
    print(f"\nmax_txs={max_txs}: {json.dumps({k: rec[k] for k in rec if k != 'batches'})} record={path}")
    assert per_swap["total"] > 0
