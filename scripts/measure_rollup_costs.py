"""Measure the embedded rollup's settlement costs and timings (the rollup issue's closing note).

    .venv/bin/python scripts/measure_rollup_costs.py            # all points (~6-10 min on 2 cores)
    .venv/bin/python scripts/measure_rollup_costs.py --points 50 200

For each point: a private L1 anvil (1 s blocks, anvil's default hardfork: EIP-7623 calldata floor) and a
rollup node on it whose batches are cut by tx count only (``--max-txs N``; blocks/bytes/time limits out of
the way), Uniswap V2 on L2, and an open-loop swap load (JSON-RPC batches: the send mode does not change
what a batch costs on L1) at a rate that puts ~N/8 swaps in each 1 s L2 block, long enough for >= 2 full
batches. Full batches (>= N txs; a batch is whole blocks, so it overshoots by < 1 block) are read back
through ``zks_getL1BatchDetails`` / ``rollup_batchTimings`` once executed on L1, and reported:

* L1 gas per batch (median) split into commit / prove / execute, plus EIP-4844 blob gas (blob point);
* amortized L1 gas per swap (sum over the full batches / their swaps), by step and in total;
* Groth16 proof time (wall, one snarkjs process per proof) and per-stage batch timings (median, s).

Writes ``reports/results/rollup/rollup-costs.json`` and prints a Markdown table. Progress on stderr
(quiet when CI is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account, derive_accounts  # noqa: E402
from harness.chain.anvil import Anvil  # noqa: E402
from harness.chain.loadgen import LoadConfig, run_load  # noqa: E402
from harness.chain.rpc import rpc_call  # noqa: E402
from harness.chain.uniswap import deploy_uniswap, fund_and_approve  # noqa: E402
from harness.rollup.batcher import STAGES  # noqa: E402
from harness.rollup.service import NodeProcess  # noqa: E402

OUT = REPO / "reports" / "results" / "rollup" / "rollup-costs.json"
L1_KEY = "0x" + derive_account(DEFAULT_MNEMONIC, 0).key.hex().removeprefix("0x")
#: (label, txs per batch, data availability)
POINTS = {"50": (50, "calldata"), "200": (200, "calldata"), "1000": (1000, "calldata"),
          "200-blobs": (200, "blobs")}


def say(msg: str) -> None:
    if not os.environ.get("CI"):
        print(f"[measure] {msg}", file=sys.stderr, flush=True)


def measure_point(label: str, max_txs: int, da: str, work: Path) -> dict:
    rate = max(20, max_txs // 8)  # swaps/s: ~8 L2 blocks per batch
    swaps = int(2.6 * max_txs) + 2 * rate  # >= 2 full batches plus the ramp
    accounts = 40
    per_account = -(-swaps // accounts)
    cfg = LoadConfig("swap", instances=2, accounts_per_instance=accounts // 2, txs_per_account=per_account,
                     send_mode="batch", batch_size=50, loop="open", target_tps=rate)
    args = ["--max-txs", str(max_txs), "--max-blocks", "100000", "--max-seconds", "600",
            "--max-bytes", str(170_000 if da == "blobs" else 10_000_000), "--da", da]
    l1 = Anvil(block_time=1, log_dir=work / f"{label}-l1").start()
    node = NodeProcess(work / f"{label}-node", l1_url=l1.url, l1_key=L1_KEY, extra_args=args)
    try:
        t0 = time.monotonic()
        node.start()
        deployer = derive_account(DEFAULT_MNEMONIC, 0)
        dep = deploy_uniswap(node.url, deployer)
        fund_and_approve(node.url, dep, deployer, derive_accounts(DEFAULT_MNEMONIC, cfg.account_base, accounts))
        say(f"{label}: node up, Uniswap deployed, {accounts} accounts funded ({time.monotonic() - t0:.0f} s); "
            f"{cfg.total_txs} swaps at {rate}/s")
        res = run_load(node.url, cfg, DEFAULT_MNEMONIC, dep)
        blocks = [t.block_number for t in res.txs if t.block_number is not None]
        first, last = min(blocks), max(blocks)
        deadline = time.monotonic() + 600
        batches: list[dict] = []
        while time.monotonic() < deadline:
            st = rpc_call(node.url, "rollup_status")
            if st["halted"]:
                raise RuntimeError(f"{label}: node halted: {st['halted']}")
            n = int(rpc_call(node.url, "zks_L1BatchNumber"), 16)
            batches = [rpc_call(node.url, "zks_getL1BatchDetails", [i]) for i in range(1, n + 1)]
            covering = [b for b in batches if b["lastBlock"] >= first and b["firstBlock"] <= last]
            full = [b for b in covering if b["l2TxCount"] >= max_txs]
            if len(full) >= 2 and all(b["status"] == "verified" for b in full):
                break
            time.sleep(1.0)
        else:
            raise RuntimeError(f"{label}: fewer than 2 full batches executed: "
                               f"{[(b['number'], b['l2TxCount'], b['status']) for b in batches]}")
        for b in full:
            b["timings_s"] = rpc_call(node.url, "rollup_batchTimings", [b["number"]])["timings_s"]
            b["proof_seconds"] = rpc_call(node.url, "rollup_batch", [b["number"]]).get("proof_seconds")
        say(f"{label}: {len(full)} full batches of {[b['l2TxCount'] for b in full]} txs executed")
        return summarize(label, max_txs, da, full, res.metrics)
    finally:
        node.stop()
        l1.stop()


def summarize(label: str, max_txs: int, da: str, full: list[dict], load_metrics: dict) -> dict:
    steps = ("commit", "prove", "execute")
    txs = sum(b["l2TxCount"] for b in full)
    gas = {s: [b[f"{s}GasUsed"] for b in full] for s in steps}
    blob = [b.get("commitBlobGasUsed") or 0 for b in full]
    per_swap = {s: sum(v) / txs for s, v in gas.items()}
    per_swap["blob"] = sum(blob) / txs
    per_swap["total_execution"] = sum(per_swap[s] for s in steps)
    per_swap["total_with_blob_gas"] = per_swap["total_execution"] + per_swap["blob"]
    stage = {s: statistics.median(b["timings_s"][s] for b in full if s in b["timings_s"])
             for s in STAGES if any(s in b["timings_s"] for b in full)}
    return {
        "point": label, "data_availability": da, "max_txs": max_txs, "full_batches": len(full),
        "txs_per_batch": [b["l2TxCount"] for b in full], "swaps_in_full_batches": txs,
        "gas_per_batch_median": {s: statistics.median(v) for s, v in gas.items()},
        "blob_gas_per_batch_median": statistics.median(blob),
        "compressed_bytes_per_batch_median": statistics.median(b["compressedBytes"] for b in full),
        "compressed_bytes_per_swap": sum(b["compressedBytes"] for b in full) / txs,
        "compression_ratio_median": statistics.median(b["compressionRatio"] for b in full),
        "amortized_l1_gas_per_swap": per_swap,
        "proof_seconds_median": statistics.median(b["proof_seconds"] for b in full if b["proof_seconds"]),
        "stage_median_s": stage,
        "published_data_source": sorted({b.get("publishedDataSource") or "" for b in full}),
        "l2_load": {k: load_metrics.get(k) for k in ("tps_sustained", "send_rate_tps", "gas_per_tx_mean")},
        "batches": full,
    }


def markdown(rows: list[dict]) -> str:
    out = ["| point | DA | txs/batch (median) | commit gas/batch | prove gas/batch | execute gas/batch | "
           "blob gas/batch | L1 gas/swap: commit | prove | execute | blob | total | proof s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g, p = r["gas_per_batch_median"], r["amortized_l1_gas_per_swap"]
        out.append(f"| {r['point']} | {r['data_availability']} | {statistics.median(r['txs_per_batch']):.0f} | "
                   f"{g['commit']:,.0f} | {g['prove']:,.0f} | {g['execute']:,.0f} | "
                   f"{r['blob_gas_per_batch_median']:,.0f} | {p['commit']:,.0f} | {p['prove']:,.0f} | "
                   f"{p['execute']:,.0f} | {p['blob']:,.0f} | {p['total_with_blob_gas']:,.0f} | "
                   f"{r['proof_seconds_median']:.2f} |")
    stages = [s for s in STAGES if any(s in r["stage_median_s"] for r in rows)]
    out += ["", "| point | " + " | ".join(f"{s} s" for s in stages) + " |",
            "|---|" + "---|" * len(stages)]
    for r in rows:
        out.append(f"| {r['point']} | " + " | ".join(f"{r['stage_median_s'].get(s, float('nan')):.3f}"
                                                    for s in stages) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", nargs="*", default=list(POINTS), choices=list(POINTS),
                    help="which points to measure (default: all)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"JSON record (default {OUT.relative_to(REPO)})")
    a = ap.parse_args(argv)
    rows = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rollup-costs-") as tmp:
        for label in a.points:
            max_txs, da = POINTS[label]
            rows.append(measure_point(label, max_txs, da, Path(tmp)))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"unit": "gas (L1), seconds", "l1": "anvil 1.7.1, 1 s blocks, default hardfork",
                                 "wall_s": time.monotonic() - t0, "points": rows}, indent=1, default=str))
    print(markdown(rows))
    print(f"\nrecord: {a.out}  ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
