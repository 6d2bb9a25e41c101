"""Computations for paper B's rollup claims (arXiv:2506.00500v1) over recorded runs; no pytest.

Inputs are the load generator's :class:`~harness.chain.loadgen.LoadResult`, the finality tracker's
:class:`~harness.chain.finality.TxFinality` records and batch details read over JSON-RPC
(``zks_getBlockDetails`` / ``zks_getL1BatchDetails``; ``rollup_batchTimings`` where the node has it).
Times are local wall-clock seconds; gas in gas units; rates per second.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.chain.finality import TxFinality
from harness.chain.metrics import BlockObs, inclusion_times, latency_stats, percentile, utilization
from harness.chain.rpc import Rpc, RpcError, to_int

#: Table 1 of the paper: generator instances -> TPS (200 txs per instance, txs / whole seconds)
PAPER_TABLE1_TPS: dict[int, float] = {1: 200.0, 2: 200.0, 3: 85.71, 4: 61.54, 5: 71.43}
PAPER_SOFT_MEDIAN_S = 2.5
PAPER_SOFT_MAX_S = 15.0
PAPER_PEAK_TPS = 98.4
PAPER_PEAK_AT_S = 4.0
PAPER_SUSTAINED_TPS = 71.43
PAPER_TXS_PER_BLOCK = 9.0
PAPER_TXS_PER_BATCH = 31.0
#: batch-sealing stages of the embedded node: "tree" is hashing + the changed-node delta (ZKsync's
#: waiting_for_tree); "persist" is the SQLite transaction (record, block map, tree delta, fsync), timed apart
SEALING_STAGES = ("seal", "state_diff", "tree", "compress", "persist")
L1_STEPS = ("commit", "prove", "execute")


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


# -- batches (settlement) -------------------------------------------------------------------------------------
def batches_for_blocks(l2_url: str, blocks: Iterable[int], l1_url: str | None = None) -> list[dict[str, Any]]:
    """The L1 batches holding ``blocks``: ``zks_getL1BatchDetails`` of every batch any of them is in, plus
    ``timings_s`` from ``rollup_batchTimings`` when the node serves it (else absent), ``l1_gas``
    {commit, prove, execute} (execution gas) from the details' ``<step>GasUsed`` or, failing that, the L1
    receipts of ``<step>TxHash`` on ``l1_url``, and ``l1_blob_gas`` (EIP-4844 blob gas, 0 for calldata)
    from ``<step>BlobGasUsed`` or the receipts' ``blobGasUsed``. Raises ValueError for a block that is in
    no batch yet."""
    nums = sorted(set(blocks))
    out: list[dict[str, Any]] = []
    with Rpc(l2_url) as rpc:
        batch_of: dict[int, int] = {}
        for i in range(0, len(nums), 200):
            chunk = nums[i : i + 200]
            for n, d in zip(chunk, rpc.batch([("zks_getBlockDetails", [n]) for n in chunk]), strict=False):
                if d is None or d.get("l1BatchNumber") is None:
                    raise ValueError(f"L2 block {n} is in no L1 batch yet on {l2_url}")
                batch_of[n] = to_int(d["l1BatchNumber"])
        for b in sorted(set(batch_of.values())):
            det = dict(rpc.call("zks_getL1BatchDetails", [b]))
            try:
                bt = rpc.call("rollup_batchTimings", [b]) or {}
                det["timings_s"], det["tree_breakdown_s"] = bt.get("timings_s"), bt.get("tree_breakdown_s")
            except RpcError:
                det["timings_s"] = det["tree_breakdown_s"] = None
            gas = {s: det.get(f"{s}GasUsed") for s in L1_STEPS}
            blob = {s: det.get(f"{s}BlobGasUsed") for s in L1_STEPS}
            if any(v is None for v in list(gas.values()) + list(blob.values())) and l1_url:
                with Rpc(l1_url) as l1:
                    for s in L1_STEPS:
                        h = det.get(f"{s}TxHash")
                        if (gas[s] is None or blob[s] is None) and h:
                            rc = l1.call("eth_getTransactionReceipt", [h])
                            if rc:
                                gas[s] = to_int(rc["gasUsed"]) if gas[s] is None else gas[s]
                                blob[s] = to_int(rc.get("blobGasUsed") or "0x0") if blob[s] is None else blob[s]
            det["l1_gas"] = gas
            det["l1_blob_gas"] = blob
            det["l2_blocks"] = [n for n, bb in batch_of.items() if bb == b]
            out.append(det)
    return out


def settlement_cost(batches: Sequence[Mapping[str, Any]], l1_gas_per_swap: float,
                    l1_gas_per_second: float) -> dict[str, Any]:
    """Amortized L1 gas per rollup tx = Σ(commit + prove + execute gas, execution gas plus EIP-4844 blob
    gas) / Σ txs of the batches; scaling factor = L1 gas per swap executed on L1 / that; L1-bound ceiling
    (TPS) = L1 gas per second / that. Blob gas (``l1_blob_gas``, absent = 0) is counted 1:1 with
    execution gas in the total (it has its own fee market and its own per-block limit; the split is
    reported: ``amortized_l1_execution_gas_per_tx``, ``amortized_l1_blob_gas_per_tx``). Raises ValueError
    if a batch lacks a step's gas or the batches hold no tx."""
    if l1_gas_per_swap <= 0 or l1_gas_per_second <= 0:
        raise ValueError("l1_gas_per_swap and l1_gas_per_second must be > 0")
    txs = sum(int(b["l2TxCount"]) for b in batches)
    if txs == 0:
        raise ValueError("the batches hold no transactions")
    per_step = {}
    blob_per_step = {}
    for s in L1_STEPS:
        vals = [b["l1_gas"][s] for b in batches]
        if any(v is None for v in vals):
            raise ValueError(f"L1 gas of step {s!r} unknown for some batch (pass the L1 URL)")
        per_step[s] = sum(vals) / txs
        blobs = [(b.get("l1_blob_gas") or {}).get(s) or 0 for b in batches]
        blob_per_step[s] = sum(blobs) / txs
    execution = sum(per_step.values())
    blob = sum(blob_per_step.values())
    amortized = execution + blob
    return {
        "batches": len(batches),
        "txs_in_batches": txs,
        "amortized_l1_gas_per_tx": amortized,
        "amortized_l1_execution_gas_per_tx": execution,
        "amortized_l1_blob_gas_per_tx": blob,
        "amortized_l1_gas_per_tx_by_step": per_step,
        "l1_gas_per_l1_swap": l1_gas_per_swap,
        "scaling_factor": l1_gas_per_swap / amortized,
        "l1_gas_per_second": l1_gas_per_second,
        "l1_bound_ceiling_tps": l1_gas_per_second / amortized,
    }


def node_batching_config(l2_url: str) -> dict[str, Any] | None:
    """The L2 node's batch-sealing configuration when it reports one (the embedded node's
    ``rollup_status``: max blocks / txs / bytes / seconds per batch, L2 block time, DA mode); None for a
    node without that method. B5's hard/soft ratio and B11's txs per batch are set by it."""
    try:
        with Rpc(l2_url) as rpc:
            st = rpc.call("rollup_status")
    except RpcError:
        return None
    if not isinstance(st, dict) or "sealingCriteria" not in st:
        return None
    return {**{f"batch_{k}": v for k, v in st["sealingCriteria"].items()},
            "l2_block_time_s": st.get("l2BlockTime_s"), "data_availability": st.get("dataAvailability")}


def txs_per_batch(batches: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per batch: txs and L2 blocks (``firstBlock..lastBlock``); means and medians."""
    txs = [int(b["l2TxCount"]) for b in batches]
    nblocks = [int(b["lastBlock"]) - int(b["firstBlock"]) + 1 for b in batches]
    return {
        "batches": len(batches),
        "txs_per_batch_mean": (sum(txs) / len(txs)) if txs else None,
        "txs_per_batch_median": _median(txs),
        "blocks_per_batch_mean": (sum(nblocks) / len(nblocks)) if nblocks else None,
        "blocks_per_batch_min": min(nblocks) if nblocks else None,
        "batches_with_one_block": sum(1 for n in nblocks if n == 1),
        "blocks_per_batch_max": max(nblocks) if nblocks else None,
    }


def stage_dominance(batches: Sequence[Mapping[str, Any]], stages: Sequence[str] = SEALING_STAGES
                    ) -> dict[str, Any]:
    """Per stage median / max seconds over the batches' ``timings_s``; the stage with the largest
    median (``dominant_by_median``) and the largest max (``dominant_by_max``); its share of the median
    sealing time; how many batches had each stage as their slowest."""
    rows = [b["timings_s"] for b in batches if b.get("timings_s")]
    if not rows:
        raise ValueError("no batch has per-stage timings")
    per = {}
    for s in stages:
        xs = [r[s] for r in rows if s in r]
        per[s] = {"median_s": _median(xs), "max_s": max(xs) if xs else None, "n": len(xs)}
    present = [s for s in stages if per[s]["n"]]
    by_median = max(present, key=lambda s: per[s]["median_s"])
    by_max = max(present, key=lambda s: per[s]["max_s"])
    slowest_count = dict.fromkeys(present, 0)
    for r in rows:
        slowest_count[max((s for s in present if s in r), key=lambda s: r[s])] += 1
    total_median = sum(per[s]["median_s"] for s in present)
    return {"per_stage": per, "dominant_by_median": by_median, "dominant_by_max": by_max,
            "dominant_share_of_median": per[by_median]["median_s"] / total_median if total_median else None,
            "slowest_stage_count": slowest_count, "batches": len(rows)}


# -- finality --------------------------------------------------------------------------------------------------
def finality_summary(records: Sequence[TxFinality]) -> dict[str, Any]:
    """Soft (submit→soft) and hard (submit→hard) latency stats, stage gaps, order violations."""
    soft = [r.soft_s - r.submit_s for r in records if r.soft_s is not None and r.submit_s is not None]
    hard = [r.hard_s - r.submit_s for r in records if r.hard_s is not None and r.submit_s is not None]
    violations = {r.tx_hash: r.order_violations() for r in records}
    violations = {h: v for h, v in violations.items() if v}
    out = {
        "txs": len(records),
        "soft_p50_s": percentile(soft, 50), "soft_p99_s": percentile(soft, 99),
        "soft_max_s": max(soft) if soft else None,
        "hard_p50_s": percentile(hard, 50), "hard_p99_s": percentile(hard, 99),
        "hard_max_s": max(hard) if hard else None,
        "order_violations": len(violations),
        "order_violation_examples": dict(list(violations.items())[:5]),
    }
    out["hard_over_soft_median"] = (out["hard_p50_s"] / out["soft_p50_s"]) if soft and hard and out["soft_p50_s"] else None
    for a, b in (("soft", "committed"), ("committed", "proven"), ("proven", "executed")):
        gaps = [getattr(r, f"{b}_s") - getattr(r, f"{a}_s") for r in records
                if getattr(r, f"{a}_s") is not None and getattr(r, f"{b}_s") is not None]
        out[f"{a}_to_{b}_p50_s"] = percentile(gaps, 50)
    return out


def soft_latencies(result: Any) -> list[float]:
    """Submit → inclusion-observed seconds for every accepted, included tx of a LoadResult."""
    incl = inclusion_times(result.txs, result.blocks)
    return [incl[t.tx_hash] - t.submit_s for t in result.txs if t.accepted and t.tx_hash in incl]


def soft_finality(result: Any) -> dict[str, Any]:
    """B4's numbers: latency stats plus the paper's bounds."""
    lat = soft_latencies(result)
    s = latency_stats(lat)
    s["within_15s_fraction"] = (sum(1 for x in lat if x <= PAPER_SOFT_MAX_S) / len(lat)) if lat else None
    return s


# -- blocks ----------------------------------------------------------------------------------------------------
def run_blocks(result: Any) -> list[BlockObs]:
    """Blocks that hold at least one tx of the run, by number."""
    nums = {t.block_number for t in result.txs if t.block_number is not None}
    return [b for b in result.blocks if b.number in nums]


def block_shape(result: Any) -> dict[str, Any]:
    """B7/B11: per-block utilization over the run and txs per block (run blocks only); 'shape' is
    low-at-start-and-end-peak-mid: first and last run block below the max of the middle ones."""
    run = {t.tx_hash for t in result.txs}
    rows = [r for r in utilization(result.blocks, run) if r["run_tx_count"] > 0]
    utils = [r["utilization"] for r in rows]
    mid = utils[1:-1]
    txs = [r["run_tx_count"] for r in rows]
    return {
        "rows": rows,
        "run_blocks": len(rows),
        "utilization_first": utils[0] if utils else None,
        "utilization_last": utils[-1] if utils else None,
        "utilization_mid_max": max(mid) if mid else None,
        "utilization_max": max(utils) if utils else None,
        "low_start_and_end_peak_mid": bool(mid) and utils[0] < max(mid) and utils[-1] < max(mid),
        "txs_per_block_mean": (sum(txs) / len(txs)) if txs else None,
        "txs_per_block_median": _median(txs),
        "txs_per_block_max": max(txs) if txs else None,
    }


# -- Table 1 / stability ----------------------------------------------------------------------------------------
def table1_row(instances: int, metrics: Mapping[str, Any], txs_per_instance: int) -> dict[str, Any]:
    """One Table 1 row: ours (sustained, peak, paper formula, GPS) beside the paper's TPS."""
    a = metrics["accounting"]
    return {
        "instances": instances,
        "txs_per_instance": txs_per_instance,
        "txs_sent": a["sent"],
        "txs_included": a["included"],
        "lost": a["missing"],
        "rejected": a["rejected"],
        "reverted": a["failed"],
        "duration_s": metrics.get("duration_submit_to_last_inclusion_s"),
        "tps_paper_formula": metrics.get("tps_paper_formula"),
        "tps_sustained": metrics.get("tps_sustained"),
        "tps_peak": metrics.get("tps_peak"),
        "gps_sustained": metrics.get("gps_sustained"),
        "send_rate_tps": metrics.get("send_rate_tps"),
        "latency_p50_s": metrics.get("latency_p50_s"),
        "latency_max_s": metrics.get("latency_max_s"),
        **send_reply_times(metrics),
        "paper_tps": PAPER_TABLE1_TPS.get(instances),
    }


def send_reply_times(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's per-request reply times of its sends (p50/p99, s) and the transport, flattened for a
    table row: a stalling transport shows here whatever the TPS figures say."""
    out: dict[str, Any] = {"send_transport": metrics.get("transport")}
    for method, q in (metrics.get("request_latency") or {}).items():
        out[f"{method}_reply_p50_s"] = q["p50_s"]
        out[f"{method}_reply_p99_s"] = q["p99_s"]
    return out


def stable_step(row: Mapping[str, Any], blocks_after: int) -> bool:
    """A step is stable when nothing accepted was lost, nothing was rejected or reverted, and the node
    kept producing blocks afterwards (``blocks_after`` > 0 new blocks within the probe)."""
    return row["lost"] == 0 and row["rejected"] == 0 and row["reverted"] == 0 and blocks_after > 0


def largest_stable(steps: Sequence[Mapping[str, Any]]) -> int | None:
    """The largest instance count such that it and every smaller tested count were stable."""
    best = None
    for s in sorted(steps, key=lambda s: s["instances"]):
        if not s["stable"]:
            break
        best = s["instances"]
    return best


# -- figures ---------------------------------------------------------------------------------------------------
def send_vs_inclusion_figure(result: Any, title: str = ""):
    """Fig 3 redrawn: per tx, submit time and inclusion-observed time (s since the first submit), by
    tx index in send order."""
    from harness.report.plots import figure

    incl = inclusion_times(result.txs, result.blocks)
    txs = sorted((t for t in result.txs if t.tx_hash in incl), key=lambda t: t.submit_s)
    t0 = min((t.submit_s for t in result.txs), default=0.0)
    fig, ax = figure()
    ax.plot(range(len(txs)), [t.submit_s - t0 for t in txs], ".", ms=2, label="sent")
    ax.plot(range(len(txs)), [incl[t.tx_hash] - t0 for t in txs], ".", ms=2, label="included (observed)")
    ax.set_xlabel("transaction (send order)")
    ax.set_ylabel("seconds since first submit")
    ax.set_title(title or "send vs inclusion times")
    ax.legend()
    return fig


def table1_figure(rows: Sequence[Mapping[str, Any]], title: str = ""):
    """Table 1 as bars: our paper-formula and sustained TPS beside the paper's TPS, per instance count."""
    from harness.report.plots import figure

    fig, ax = figure()
    xs = list(range(len(rows)))
    w = 0.27
    ax.bar([x - w for x in xs], [r["paper_tps"] or 0 for r in rows], w, label="paper (txs / whole s)")
    ax.bar(xs, [r["tps_paper_formula"] or 0 for r in rows], w, label="ours, paper formula")
    ax.bar([x + w for x in xs], [r["tps_sustained"] or 0 for r in rows], w, label="ours, sustained")
    ax.set_xticks(xs, [str(r["instances"]) for r in rows])
    ax.set_xlabel("concurrent generator instances")
    ax.set_ylabel("TPS")
    ax.set_title(title or "Table 1: TPS vs generator instances")
    ax.legend()
    return fig


def finality_figure(records: Sequence[TxFinality], title: str = ""):
    """Per tx (send order): seconds from submit to soft, committed, proven, executed (log scale)."""
    from harness.report.plots import figure

    recs = sorted(records, key=lambda r: r.submit_s or 0.0)
    fig, ax = figure()
    for name in ("soft", "committed", "proven", "executed", "safe", "finalized"):
        ys = [(getattr(r, f"{name}_s") - r.submit_s) for r in recs
              if getattr(r, f"{name}_s") is not None and r.submit_s is not None]
        if ys:
            ax.plot(range(len(ys)), ys, ".", ms=2, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("transaction (send order)")
    ax.set_ylabel("seconds after submit")
    ax.set_title(title or "finality stages per transaction")
    ax.legend()
    return fig


def observed_gas_per_second(url: str, blocks: int = 10) -> float:
    """An external chain's gas per second: latest block gas limit / mean header-timestamp interval over the
    last ``blocks`` blocks (gas units / s). Raises ValueError if the chain has too few blocks."""
    with Rpc(url) as rpc:
        head = to_int(rpc.call("eth_blockNumber"))
        if head < blocks:
            raise ValueError(f"{url}: only {head} blocks, need {blocks} to estimate the block time")
        first = rpc.call("eth_getBlockByNumber", [hex(head - blocks), False])
        last = rpc.call("eth_getBlockByNumber", [hex(head), False])
    dt = (to_int(last["timestamp"]) - to_int(first["timestamp"])) / blocks
    if dt <= 0:
        raise ValueError(f"{url}: block timestamps do not advance")
    return to_int(last["gasLimit"]) / dt


def stability_figure(steps: Sequence[Mapping[str, Any]], title: str = ""):
    """B6: per instance count, sustained TPS (bars, left axis) and lost txs (markers, right axis);
    unstable steps are hatched."""
    from harness.report.plots import figure

    fig, ax = figure()
    xs = list(range(len(steps)))
    bars = ax.bar(xs, [s.get("tps_sustained") or 0 for s in steps], 0.6, label="sustained TPS")
    for bar, s in zip(bars, steps, strict=True):
        if not s.get("stable", True):
            bar.set_hatch("//")
    ax.set_xticks(xs, [str(s["instances"]) for s in steps])
    ax.set_xlabel("concurrent generator instances")
    ax.set_ylabel("sustained TPS")
    lost_ax = ax.twinx()
    lost_ax.plot(xs, [s.get("lost", 0) for s in steps], "rx-", label="lost (accepted, never included)")
    lost_ax.set_ylabel("lost transactions")
    lost_ax.set_ylim(bottom=0, top=max(1, *(s.get("lost", 0) for s in steps)) * 1.2)
    ax.axvline(max((i for i, s in enumerate(steps) if s["instances"] <= 5), default=-1) + 0.5,
               color="k", ls=":", lw=0.8, label="paper: unstable above 5")
    handles = ax.get_legend_handles_labels()
    more = lost_ax.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper left")
    ax.set_title(title or "B6: stability vs generator instances (hatched = unstable)")
    return fig


def stage_timings_figure(batches: Sequence[Mapping[str, Any]], title: str = ""):
    """B8: per-stage seconds for every batch (one line per stage), log scale."""
    from harness.report.plots import figure

    rows = [b for b in batches if b.get("timings_s")]
    stages = list(rows[0]["timings_s"]) if rows else []
    fig, ax = figure()
    for stage in stages:
        ys = [b["timings_s"].get(stage) for b in rows]
        style = "o-" if stage in SEALING_STAGES else "x--"
        ax.plot([b["number"] for b in rows], [max(y, 1e-6) if y is not None else None for y in ys], style,
                ms=4, label=stage + ("" if stage in SEALING_STAGES else " (settlement)"))
    ax.set_yscale("log")
    ax.set_xlabel("batch number")
    ax.set_ylabel("seconds (log)")
    ax.set_title(title or "B8: per-stage timings per batch (solid = sealing stages)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def workload_ratio_figure(swap: Mapping[str, Any], transfer: Mapping[str, Any], title: str = ""):
    """B10: TPS and GPS of a transfer run and a swap run on the same chain, each normalised to the swap
    run's (1.0 = the same); GPS being the capacity figure means the GPS bars stay at 1."""
    from harness.report.plots import figure

    fig, ax = figure()
    tps = transfer["tps_sustained"] / swap["tps_sustained"] if swap.get("tps_sustained") else 0.0
    gps = transfer["gps_sustained"] / swap["gps_sustained"] if swap.get("gps_sustained") else 0.0
    ax.bar([0, 1], [1.0, 1.0], 0.35, label="swap run (reference)")
    ax.bar([0.35, 1.35], [tps, gps], 0.35, label="transfer run")
    for x, v in ((0.35, tps), (1.35, gps)):
        ax.text(x, v, f"{v:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xticks([0.175, 1.175], ["TPS (sustained)", "gas per second"])
    ax.set_ylabel("transfer / swap")
    ax.set_title(title or "B10: TPS vs GPS across workloads")
    ax.legend(fontsize=8)
    return fig


def batch_composition_figure(blocks: Sequence[Mapping[str, Any]], batches: Sequence[Mapping[str, Any]],
                             title: str = ""):
    """B11: txs per L2 block over the run (``block_shape`` rows, left) and txs and L2 blocks per batch
    (right)."""
    from harness.report.plots import plt

    fig, (ax_blocks, ax_batches) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax in (ax_blocks, ax_batches):
        ax.grid(True, alpha=0.3)
    ax_blocks.bar(range(len(blocks)), [b.get("run_tx_count", 0) for b in blocks])
    ax_blocks.axhline(PAPER_TXS_PER_BLOCK, color="k", ls=":", lw=0.8, label=f"paper ~{PAPER_TXS_PER_BLOCK}")
    ax_blocks.set_xlabel("L2 block of the run")
    ax_blocks.set_ylabel("txs per block")
    ax_blocks.legend(fontsize=8)
    nums = [str(b["number"]) for b in batches]
    ax_batches.bar(nums, [int(b["l2TxCount"]) for b in batches], label="txs")
    ax_batches.axhline(PAPER_TXS_PER_BATCH, color="k", ls=":", lw=0.8, label=f"paper ~{PAPER_TXS_PER_BATCH} txs")
    ax_batches.set_xlabel("batch")
    ax_batches.set_ylabel("txs per batch")
    nblk = ax_batches.twinx()
    nblk.plot(nums, [int(b["lastBlock"]) - int(b["firstBlock"]) + 1 for b in batches], "ro-", label="L2 blocks")
    nblk.set_ylabel("L2 blocks per batch")
    nblk.set_ylim(bottom=0)
    h1, l1 = ax_batches.get_legend_handles_labels()
    h2, l2 = nblk.get_legend_handles_labels()
    ax_batches.legend(h1 + h2, l1 + l2, fontsize=8)
    fig.suptitle(title or "B11: txs per L2 block and per batch")
    return fig
