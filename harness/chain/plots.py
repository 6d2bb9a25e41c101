"""Figures: of one load run (TPS over time, latency CDF, block utilization over time) and paper B's figures
(Fig 3 send vs inclusion, Table 1, finality stages, B6 stability, B8 stage timings, B10 workload ratio,
B11 batch composition). The paper's reference numbers are parameters (suites/rollup/spec.py holds them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.chain.finality import TxFinality
from harness.chain.metrics import inclusion_times, tps_series, utilization
from harness.chain.settlement import SEALING_STAGES, blocks_in
from harness.report.plots import figure, plt


def tps_figure(result: Any, title: str = ""):
    """Inclusions per second (1 s bins, on inclusion-observed time from the first submit), with the
    sustained and peak rates as horizontal lines."""
    incl = inclusion_times(result.txs, result.blocks)
    t0 = min(t.submit_s for t in result.txs)
    series = tps_series(list(incl.values()), 1.0, origin=t0)
    fig, ax = figure()
    if series:
        ax.step([s for s, _ in series], [v for _, v in series], where="post", label="TPS (1 s bins)")
    m = result.metrics
    if m.get("tps_sustained"):
        ax.axhline(m["tps_sustained"], color="C1", ls="--", label=f"sustained {m['tps_sustained']:.1f}")
    if m.get("tps_peak"):
        ax.axhline(m["tps_peak"], color="C3", ls=":", label=f"peak {m['tps_peak']:.1f}")
    ax.set_xlabel("seconds since first submit")
    ax.set_ylabel("transactions per second")
    ax.set_title(title or "TPS over time")
    ax.legend()
    return fig


def latency_cdf_figure(result: Any, title: str = ""):
    """Empirical CDF of submit → inclusion-observed latency (seconds)."""
    incl = inclusion_times(result.txs, result.blocks)
    lat = sorted(incl[t.tx_hash] - t.submit_s for t in result.txs if t.tx_hash in incl)
    fig, ax = figure()
    if lat:
        ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))])
    ax.set_xlabel("latency submit → inclusion observed (s)")
    ax.set_ylabel("fraction of txs")
    ax.set_title(title or "latency CDF")
    return fig


def utilization_figure(result: Any, title: str = ""):
    """Per block: gas used / gas limit (left axis) and txs per block (right axis) over time."""
    run = {t.tx_hash for t in result.txs}
    rows = utilization(result.blocks, run)
    fig, ax = figure()
    if rows:
        ax.plot(
            [r["t_rel_s"] for r in rows], [r["utilization"] for r in rows], "o-", label="gas used / limit"
        )
        ax2 = ax.twinx()
        ax2.bar([r["t_rel_s"] for r in rows], [r["tx_count"] for r in rows], width=0.3, alpha=0.3, color="C2")
        ax2.set_ylabel("txs per block")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("seconds since first observed block")
    ax.set_ylabel("block utilization")
    ax.set_title(title or "block utilization")
    return fig


# -- paper B figures (harness.chain.claims_b / settlement rows) -----------------------------------------------
def send_vs_inclusion_figure(result: Any, title: str = ""):
    """Fig 3 redrawn: per tx, submit time and inclusion-observed time (s since the first submit), by
    tx index in send order."""
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


def stability_figure(steps: Sequence[Mapping[str, Any]], title: str = "", paper_max_stable: int = 5):
    """B6: per instance count, sustained TPS (bars, left axis) and lost txs (markers, right axis);
    unstable steps are hatched; a dotted line after ``paper_max_stable`` instances (the paper's)."""
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
    ax.axvline(max((i for i, s in enumerate(steps) if s["instances"] <= paper_max_stable), default=-1) + 0.5,
               color="k", ls=":", lw=0.8, label=f"paper: unstable above {paper_max_stable}")
    handles = ax.get_legend_handles_labels()
    more = lost_ax.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper left")
    ax.set_title(title or "B6: stability vs generator instances (hatched = unstable)")
    return fig


def stage_timings_figure(batches: Sequence[Mapping[str, Any]], title: str = ""):
    """B8: per-stage seconds for every batch (one line per stage), log scale."""
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
                             paper_txs_per_block: float, paper_txs_per_batch: float, title: str = ""):
    """B11: txs per L2 block over the run (``block_shape`` rows, left) and txs and L2 blocks per batch
    (``l2_block_range``, right), with the paper's ~txs per block and per batch as dotted lines."""
    fig, (ax_blocks, ax_batches) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax in (ax_blocks, ax_batches):
        ax.grid(True, alpha=0.3)
    ax_blocks.bar(range(len(blocks)), [b.get("run_tx_count", 0) for b in blocks])
    ax_blocks.axhline(paper_txs_per_block, color="k", ls=":", lw=0.8, label=f"paper ~{paper_txs_per_block}")
    ax_blocks.set_xlabel("L2 block of the run")
    ax_blocks.set_ylabel("txs per block")
    ax_blocks.legend(fontsize=8)
    nums = [str(b["number"]) for b in batches]
    ax_batches.bar(nums, [int(b["l2TxCount"]) for b in batches], label="txs")
    ax_batches.axhline(paper_txs_per_batch, color="k", ls=":", lw=0.8, label=f"paper ~{paper_txs_per_batch} txs")
    ax_batches.set_xlabel("batch")
    ax_batches.set_ylabel("txs per batch")
    nblk = ax_batches.twinx()
    nblk.plot(nums, [blocks_in(b) for b in batches], "ro-", label="L2 blocks")
    nblk.set_ylabel("L2 blocks per batch")
    nblk.set_ylim(bottom=0)
    h1, l1 = ax_batches.get_legend_handles_labels()
    h2, l2 = nblk.get_legend_handles_labels()
    ax_batches.legend(h1 + h2, l1 + l2, fontsize=8)
    fig.suptitle(title or "B11: txs per L2 block and per batch")
    return fig
