"""Settlement and batch statistics for paper B's claims (B1 way 2, B8, B11) over the batches
:func:`harness.chain.l2_reads.batches_for_blocks` reads; no pytest, no RPC.

A batch here is a ``zks_getL1BatchDetails`` mapping plus ``l2_block_range`` [first, last]
(``zks_getL1BatchBlockRange``), ``l1_gas`` / ``l1_blob_gas`` {commit, prove, execute} (this batch's share
of each L1 tx) and, on the embedded node, ``timings_s``. Gas in gas units, times in seconds.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from harness.chain.l2_reads import L1_STEPS

#: batch-sealing stages of the embedded node: "tree" is hashing + the changed-node delta (ZKsync's
#: waiting_for_tree); "persist" is the SQLite transaction (record, block map, tree delta, fsync), timed apart
SEALING_STAGES = ("seal", "state_diff", "tree", "compress", "persist")


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def blocks_in(batch: Mapping[str, Any]) -> int:
    """L2 blocks in a batch, from its ``l2_block_range`` (zks_getL1BatchBlockRange)."""
    first, last = batch["l2_block_range"]
    return int(last) - int(first) + 1


def settlement_cost(batches: Sequence[Mapping[str, Any]], l1_gas_per_swap: float,
                    l1_gas_per_second: float) -> dict[str, Any]:
    """Amortized L1 gas per rollup tx = Σ(commit + prove + execute gas, execution gas plus EIP-4844 blob
    gas) / Σ txs of the batches; scaling factor = L1 gas per swap executed on L1 / that; L1-bound ceiling
    (TPS) = L1 gas per second / that. Each batch counts its share of an L1 tx carrying several batches
    (``l1_gas`` as :func:`~harness.chain.l2_reads.batches_for_blocks` gives it). Blob gas (``l1_blob_gas``,
    absent = 0) is counted 1:1 with execution gas in the total (it has its own fee market and its own
    per-block limit; the split is reported: ``amortized_l1_execution_gas_per_tx``,
    ``amortized_l1_blob_gas_per_tx``). Raises ValueError if a batch lacks a step's gas or the batches hold
    no tx."""
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
    shared = {s: max((int((b.get("l1_tx_batches") or {}).get(s) or 1) for b in batches), default=1)
              for s in L1_STEPS}
    return {
        "batches": len(batches),
        "txs_in_batches": txs,
        "amortized_l1_gas_per_tx": amortized,
        "amortized_l1_execution_gas_per_tx": execution,
        "amortized_l1_blob_gas_per_tx": blob,
        "amortized_l1_gas_per_tx_by_step": per_step,
        "max_batches_per_l1_tx_by_step": shared,
        "l1_gas_per_l1_swap": l1_gas_per_swap,
        "scaling_factor": l1_gas_per_swap / amortized,
        "l1_gas_per_second": l1_gas_per_second,
        "l1_bound_ceiling_tps": l1_gas_per_second / amortized,
    }


def txs_per_batch(batches: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per batch: txs and L2 blocks (``l2_block_range``); means and medians."""
    txs = [int(b["l2TxCount"]) for b in batches]
    nblocks = [blocks_in(b) for b in batches]
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
