"""Run statistics for paper B's rollup claims (arXiv:2506.00500v1): finality, soft finality, block shape,
Table 1 rows and stability, over the load generator's :class:`~harness.chain.loadgen.LoadResult` and the
finality tracker's :class:`~harness.chain.finality.TxFinality` records; no pytest, no RPC.

The L1/L2 reads are in :mod:`harness.chain.l2_reads`, settlement and batch statistics in
:mod:`harness.chain.settlement`, the figures in :mod:`harness.chain.plots`; the paper's numbers live in
``suites/rollup/spec.py`` and are passed in. Times are local wall-clock seconds; rates per second.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from harness.chain.finality import TxFinality
from harness.chain.metrics import (
    BlockObs,
    inclusion_times,
    latency_stats,
    percentile,
    steady_window,
    utilization,
)


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


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


def soft_finality(result: Any, max_s: float) -> dict[str, Any]:
    """B4's numbers: latency stats plus the fraction within the paper's bound ``max_s`` (seconds)."""
    lat = soft_latencies(result)
    s = latency_stats(lat)
    s["within_max_fraction"] = (sum(1 for x in lat if x <= max_s) / len(lat)) if lat else None
    s["within_max_s"] = max_s
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


def peak_resolvable(times: Sequence[float], window_s: float) -> tuple[bool, str]:
    """B2: can this run show a peak above its sustained rate at all? Only if its steady window
    (metrics.steady_window) splits at an inclusion instant into two parts of >= ``window_s`` each. The
    peak is the best rate over any interval of >= ``window_s`` between inclusion instants, and the steady
    window is such an interval itself: with such a split, one part's rate is >= the window's, and the
    comparison is between the burst's parts; without one, the only candidates are the steady window and
    intervals running into the trimmed ramp-down, so the verdict is set by the window's granularity, not
    the burst (a 1000-tx burst included in 2-3 one-second blocks: peak = sustained by construction, or a
    first second of 0.99 s not counted). ``times``: inclusion-observed times. (resolvable, why not)."""
    window = steady_window(times)
    if window is None:
        return False, "no steady window (fewer than 2 inclusion instants)"
    t0, t_end = window
    instants = sorted(set(times))
    if any(t - t0 >= window_s and t_end - t >= window_s for t in instants if t0 < t < t_end):
        return True, ""
    inside = [round(t - t0, 3) for t in instants if t0 <= t <= t_end]
    return False, (f"the steady window is {t_end - t0:.3f} s with inclusion instants at {inside} s, and no instant "
                   f"splits it into two parts of >= {window_s:g} s; {len(instants)} inclusion instants in all")


def small_blocks(shape: Mapping[str, Any], paper_txs_per_block: float, factor: float) -> dict[str, Any]:
    """B11's first half, 'L2 blocks are small': the mean run txs per run block (the run's txs / its blocks,
    as the paper's ~9 is) within ``factor`` x the paper's txs per block (an order of magnitude: factor 10).
    Not the median: a run of 3 blocks has a ramp block as its median in some runs (65 txs between 435 and
    500), so the median flips where the mean does not."""
    limit = factor * paper_txs_per_block
    mean = shape.get("txs_per_block_mean")
    return {"small_blocks_limit_txs": limit, "small_blocks": mean is not None and mean <= limit}


# -- Table 1 / stability ----------------------------------------------------------------------------------------
def table1_row(instances: int, metrics: Mapping[str, Any], txs_per_instance: int,
               paper_tps: float | None = None) -> dict[str, Any]:
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
        "paper_tps": paper_tps,
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


# -- does the settlement pipeline keep up? ---------------------------------------------------------------------
def hard_finality_lag(records: Sequence[TxFinality], window_s: float = 10.0) -> dict[str, Any]:
    """Hard-finality lag (submit → hard finality, s) of the txs submitted in the run's first and last
    ``window_s`` seconds: a pipeline that keeps up has about the same lag at the end as at the start; a
    backlog that grows shows as an end lag growing with the run's length. ``end_over_start``: the ratio
    of the two medians; ``not_hard_final``: txs that never reached hard finality (each is a failure)."""
    timed = [r for r in records if r.submit_s is not None]
    done = [r for r in timed if r.hard_s is not None]
    out: dict[str, Any] = {"txs": len(records), "not_hard_final": len(timed) - len(done), "window_s": window_s}
    if not done:
        return out | {"start_lag_p50_s": None, "end_lag_p50_s": None, "end_over_start": None}
    t0, t1 = min(r.submit_s for r in timed), max(r.submit_s for r in timed)
    start = [r.hard_s - r.submit_s for r in done if r.submit_s <= t0 + window_s]
    end = [r.hard_s - r.submit_s for r in done if r.submit_s >= t1 - window_s]
    s, e = _median(start), _median(end)
    return out | {
        "run_span_s": t1 - t0, "start_txs": len(start), "end_txs": len(end),
        "start_lag_p50_s": s, "end_lag_p50_s": e,
        "start_lag_max_s": max(start) if start else None, "end_lag_max_s": max(end) if end else None,
        "end_over_start": (e / s) if s and e is not None else None,
        "batches": len({r.batch for r in done if r.batch is not None}),
    }
