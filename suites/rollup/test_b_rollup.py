"""Paper B on the rollup (arXiv:2506.00500v1): the claims the L1 suite (test_l1_*) does not cover.

The L2 under test is the embedded rollup node (fixtures/rollup.py) or an external one (--l2-url, see
fixtures/targets.py). Every run is the chain harness's multi-process swap generator: instances are
separate processes, each with its own accounts, one HTTP request per tx (like the paper's Python
generators), closed loop. The paper's instance sends 200 swaps (Table 1); at the smoke profile an
instance is 20 accounts x 10 swaps, at the paper profile 50 accounts x 4 swaps (the paper's 50 accounts).

The paper's 5-instance run is the "main run" shared by B1, B2, B4, B5, B7, B8, B10 and B11. The Table 1
sweep (B3) and the stability sweep (B6) share their runs: instances 1..5 as in the paper, then 8 and 16;
``test_b3_b6_steps_lose_no_accepted_tx`` checks the loss accounting of every step on the same runs and
is never a registered deviation.

On a target without a capability a claim needs (an external L2 in tags mode has no L1 batch details or
per-stage timings), the test is skipped with a reason naming the missing capability.
"""

from __future__ import annotations

import json
import statistics

import pytest

from fixtures.targets import L1_BASELINE_PROFILE, L1_BASELINE_PROFILES, results_path
from harness.chain import claims_b, l2_reads, plots, settlement
from harness.chain.loadgen import LoadConfig
from harness.chain.metrics import inclusion_times, tps_series
from harness.report.attach import attach_figure, attach_json, attach_table
from suites.rollup import spec
from suites.rollup.test_l1_throughput import swap_cfg as l1_swap_cfg

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("load")]

PAPER_INSTANCES = (1, 2, 3, 4, 5)
#: Table 1 / stability steps: the paper's 1..5 "and beyond" (issues 6, 11: until the node saturates or fails); 16 needs
#: 320 funded load accounts at smoke, 64 needs 3,200 at paper (fixtures/targets.py L2_LOAD_ACCOUNTS)
STEPS = {"smoke": (1, 2, 3, 4, 5, 8, 16), "paper": (1, 2, 3, 4, 5, 8, 16, 32, 64)}
#: B3: the smallest TPS drop after 2 instances that counts as the paper's shape (see the test)
DROP_MIN_FRACTION = 0.10
#: B5: "hard finality much later than soft" read as at least one order of magnitude between the medians
HARD_OVER_SOFT_MIN = 10.0


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """B1 runs against each embedded L1 profile (mainnet, mainnet-scaled); an external L1 (--l1-key) is one."""
    if "l1_chain_profile" in metafunc.fixturenames:
        external = bool(metafunc.config.getoption("--l1-key"))
        metafunc.parametrize("l1_chain_profile", ["external"] if external else list(L1_BASELINE_PROFILES))


def instance_cfg(instances: int, profile: str) -> LoadConfig:
    """200 swaps per generator instance (the paper's Table 1), one HTTP request per tx."""
    apa, tpa = (50, 4) if profile == "paper" else (20, 10)
    return LoadConfig("swap", instances=instances, accounts_per_instance=apa, txs_per_account=tpa,
                      send_mode="single", drain_timeout_s=180)


def main_cfg(profile: str) -> LoadConfig:
    return instance_cfg(5, profile)


def main_run_url(res) -> str:
    return res.chain["url"]


def _acc(m: dict) -> dict:
    a = m["accounting"]
    return {k: a[k] for k in ("sent", "included", "failed", "rejected", "missing")}


@pytest.fixture
def main_run(profile, l2_load, results_dir):
    """The paper's 5-instance run on the L2 (memoized); its full record is written under
    results_dir/rollup-b/. Figures are attached by the test each belongs to (Fig 2: B2, Fig 3: B4, Fig 4: B7)."""
    res = l2_load(main_cfg(profile))
    path = results_path(results_dir, "main-run-5-instances.json")
    record = json.dumps(res.as_dict(), default=str)
    if not path.is_file() or path.read_text() != record:  # not a stale record of an earlier session
        path.write_text(record)
    return res


@pytest.mark.claim(spec.B1)
def test_b1_rollup_swap_tps_exceeds_l1(profile, l1_chain_profile, main_run, l1_baseline, l1_baseline_info,
                                       claim_report):
    """B1, way 1: observed sustained swap TPS on the rollup vs on the L1 baseline, per L1 profile
    (``mainnet``: 30 M gas / 12 s blocks; ``mainnet-scaled``: 2.5 M gas / 1 s; both 2.5 Mgas/s), same swap
    workload. The L1 side is gas-bound (the L1 suite's flood reaches the profile's gas ceiling), so its
    generator's send mode (JSON-RPC batches) does not change its TPS; the L2 side is the paper's
    generators: one HTTP request per tx. The L1 runs are the L1 suite's (test_l1_throughput.py), reused
    within the session through fixtures/chain.py's memoized ``l1_load``."""
    chain_profile = L1_BASELINE_PROFILE if l1_chain_profile == "external" else l1_chain_profile
    info = l1_baseline_info(chain_profile)
    l1 = l1_baseline(l1_swap_cfg(chain_profile, profile), chain_profile)
    m2, m1 = main_run.metrics, l1.metrics
    ratio = (m2["tps_sustained"] or 0) / m1["tps_sustained"]
    measured = {
        "l2_tps_sustained": m2["tps_sustained"], "l2_tps_paper_formula": m2["tps_paper_formula"],
        "l1_tps_sustained": m1["tps_sustained"], "l1_tps_paper_formula": m1["tps_paper_formula"],
        "l2_over_l1": ratio, "l1_baseline": info.name, "l1_gas_per_second": info.gas_per_second,
        "l1_bound": "gas (profile gas per second)", "l1_send_mode": l1.config.get("send_mode"),
        "l2_send_mode": main_run.config.get("send_mode"), "l2_instances": main_run.config.get("instances"),
        "l2_gps": m2["gps_sustained"], "l1_gps": m1["gps_sustained"],
        **{f"l2_{k}": v for k, v in _acc(m2).items()}, "l1_missing": m1["accounting"]["missing"],
        **{f"l2_{k}": v for k, v in claims_b.send_reply_times(m2).items()},
        # how inclusion was observed on each side (newHeads or poll, why a fallback, the resolution, gaps)
        "l2_observation": _observation_summary(m2), "l1_observation": _observation_summary(m1),
    }
    attach_table("per-request reply times of the sends (s)", [
        {"side": side, "transport": m.get("transport"), "method": meth, **q}
        for side, m in (("L2 main run", m2), (f"L1 {info.name}", m1))
        for meth, q in (m.get("request_latency") or {}).items()])
    claim_report(measured, reproduced=ratio > 1 and m2["accounting"]["missing"] == 0,
                 detail=f"paper: 71.43 vs 12-23 TPS; L1 baseline: {info.name} (gas-bound: its send mode does "
                        "not matter); L2: the 5-instance main run, one HTTP request per tx (the paper's generators)")
    assert m2["accounting"]["missing"] == 0, _acc(m2)
    assert ratio > 1, f"L2 {m2['tps_sustained']} TPS vs L1 {m1['tps_sustained']} TPS"


def _observation_summary(m: dict) -> dict | None:
    """The load result's observation record, less its distributions (those stay in the result JSON)."""
    o = m.get("observation")
    if not o:
        return None
    lag = o.get("push_behind_poll_s") or {}
    return {**{k: o.get(k) for k in ("mode", "resolution_s", "resolution_max_s", "fallback_reason", "gaps",
                                     "late_pushes", "blocks", "blocks_by")},
            "push_lag_p50_s": lag.get("p50_s"), "push_lag_max_s": lag.get("max_s")}


def _skip_without_settlement(st: dict) -> None:
    """A target answering zks_* without L1 settlement data (anvil-zksync) has no settlement claims."""
    if st.get("no_settlement"):
        pytest.skip(f"not measurable on this target: {st['no_settlement']}")


@pytest.mark.claim(spec.B1)
def test_b1_settlement_cost_scaling_factor(profile, main_run, l2_settle, l1_baseline, l1_baseline_info,
                                           claim_report):
    """B1, way 2: L1 gas per swap executed on L1 / amortized L1 gas per rollup swap (commit + prove +
    execute gas of the batches holding the main run / txs in them), and the L1-bound throughput ceiling
    = L1 gas per second / amortized cost."""
    st = l2_settle(main_run)
    _skip_without_settlement(st)
    if st["batches"] is None:
        pytest.skip(f"not measurable on this target: finality mode {st['mode']!r} exposes no L1 batches "
                    "(settlement cost needs zks_getBlockDetails/zks_getL1BatchDetails: the batches holding the "
                    "run and their commit/prove/execute L1 tx hashes or gas)")
    info = l1_baseline_info(L1_BASELINE_PROFILE)
    l1 = l1_baseline(l1_swap_cfg(L1_BASELINE_PROFILE, profile), L1_BASELINE_PROFILE)
    cost = settlement.settlement_cost(st["batches"], l1.metrics["gas_per_tx_mean"], info.gas_per_second)
    attach_table("settlement batches", [
        {"batch": b["number"], "l2_txs": b["l2TxCount"], "first_block": b["l2_block_range"][0],
         "last_block": b["l2_block_range"][1], **{f"{k}_gas": v for k, v in b["l1_gas"].items()},
         **{f"{k}_l1_tx_batches": v for k, v in (b.get("l1_tx_batches") or {}).items()},
         **{f"{k}_blob_gas": v for k, v in (b.get("l1_blob_gas") or {}).items()},
         "compressed_bytes": b.get("compressedBytes")}
        for b in st["batches"]])
    measured = {k: v for k, v in cost.items()
                if k not in ("amortized_l1_gas_per_tx_by_step", "max_batches_per_l1_tx_by_step")}
    measured.update({f"amortized_{k}_gas_per_tx": v for k, v in cost["amortized_l1_gas_per_tx_by_step"].items()})
    measured.update({f"max_batches_per_{k}_l1_tx": v for k, v in cost["max_batches_per_l1_tx_by_step"].items()})
    measured["l2_tps_sustained_observed"] = main_run.metrics["tps_sustained"]
    measured.update(l2_reads.node_batching_config(main_run_url(main_run)) or {})
    ok = cost["scaling_factor"] > 1
    claim_report(measured, reproduced=ok,
                 detail="amortized over every tx in the batches holding the main run (other workers' txs "
                        "on a shared node count too); the batch size follows the node's sealing criteria")
    assert ok, cost


@pytest.mark.claim(spec.B2)
def test_b2_peak_above_sustained(main_run, claim_report):
    m = main_run.metrics
    attach_figure("Fig 2: TPS over time (rollup, 5 instances)", plots.tps_figure(main_run, "rollup, 5 instances"))
    times = list(inclusion_times(main_run.txs, main_run.blocks).values())
    attach_table("Fig 2 data: TPS per 1 s bin", [
        {"t_s": t, "tps": v} for t, v in tps_series(times, 1.0, origin=min(t.submit_s for t in main_run.txs))])
    resolvable, why = claims_b.peak_resolvable(times, m["tps_peak_window_s"])
    if not resolvable:
        pytest.skip(f"not measurable at this run length: {why} (peak {m['tps_peak']}, sustained "
                    f"{m['tps_sustained']} TPS, {m['run_blocks']} run blocks)")
    ok = m["tps_peak"] is not None and m["tps_sustained"] is not None and m["tps_peak"] > m["tps_sustained"]
    claim_report({"tps_peak": m["tps_peak"], "tps_peak_at_s": m["tps_peak_at_s"],
                  "tps_peak_window_s": m["tps_peak_window_s"], "tps_sustained": m["tps_sustained"],
                  "tps_steady_window_s": m["tps_steady_window_s"], "peak_over_sustained": (m["tps_peak"] / m["tps_sustained"]) if ok else None,
                  "paper_peak_tps": spec.PAPER_PEAK_TPS, "paper_peak_at_s": spec.PAPER_PEAK_AT_S},
                 reproduced=ok, detail="peak: highest rate over >= 1 s between inclusion instants")
    assert ok, m


@pytest.mark.claim(spec.B3)
def test_b3_table1_tps_vs_generator_instances(profile, l2_load, results_dir, claim_report):
    """Table 1: per instance count (1..5 as in the paper, then 8 and 16), txs, time and TPS (ours:
    sustained and the paper's whole-second formula) beside the paper's row. Verdict: the paper's shape —
    TPS with 3, 4 and 5 instances all below TPS with 1 and 2 instances (paper formula). Loss accounting:
    test_b3_b6_steps_lose_no_accepted_tx."""
    counts = STEPS[profile]
    rows = []
    for k in counts:
        cfg = instance_cfg(k, profile)
        rows.append(claims_b.table1_row(k, l2_load(cfg).metrics, cfg.accounts_per_instance * cfg.txs_per_account,
                                        spec.PAPER_TABLE1_TPS.get(k)))
    attach_table("Table 1 (ours beside the paper's)", rows)
    attach_figure("Table 1", plots.table1_figure(rows))
    results_path(results_dir, "table1.json").write_text(json.dumps(rows, indent=1))
    tps = {r["instances"]: r["tps_paper_formula"] for r in rows}
    sustained = {r["instances"]: r["tps_sustained"] for r in rows}
    # a step whose txs all land within the sustained window's minimum span has no sustained rate (None): the
    # shape cannot be shown on it, so it is counted, reported and read as "not shown" (never as a number)
    unmeasured = sorted(k for k in (1, 2, 3, 4, 5) if sustained[k] is None)
    # the verdict is on the sub-second measure (CLAIMS.md: local clocks with sub-second resolution; the paper's
    # txs / whole seconds is reported beside it): at 200 txs per instance and >100 TPS a run spans 1-8 block
    # seconds, so one second more or less moves the paper formula by 12-50 %, more than the shape it judges
    # a drop must exceed the step-to-step spread of a flat (saturated) curve: below DROP_MIN_FRACTION it is the
    # order of five near-equal numbers (2026-12-02 fresh-clone CI run: 136, 142, 137, 150, 137 TPS), which
    # one run would call a drop and the next not; the paper's own drop is 57 % (200 -> 85.7)
    drop = not unmeasured and (max(sustained[k] for k in (3, 4, 5))
                                < (1 - DROP_MIN_FRACTION) * min(sustained[k] for k in (1, 2)))
    drop_paper_formula = max(tps[k] for k in (3, 4, 5)) < min(tps[k] for k in (1, 2))
    measured = {f"tps_paper_formula_{k}": tps[k] for k in counts}
    measured.update({f"tps_sustained_{r['instances']}": r["tps_sustained"] for r in rows})
    measured["lost_total"] = sum(r["lost"] for r in rows)
    measured["drop_after_2_instances"] = drop
    measured["drop_after_2_instances_paper_formula"] = drop_paper_formula
    measured["steps_without_sustained_window"] = unmeasured
    measured["drop_min_fraction"] = DROP_MIN_FRACTION
    claim_report(measured, reproduced=drop,
                 detail="paper: 1->200, 2->200, 3->85.71, 4->61.54, 5->71.43 TPS; 200 txs per instance; judged on "
                        "sustained TPS (sub-second clocks), the paper's whole-second formula reported beside it")
    assert drop, sustained


@pytest.mark.claim(spec.B4)
def test_b4_soft_finality_fast(main_run, claim_report):
    s = claims_b.soft_finality(main_run, spec.PAPER_SOFT_MAX_S)
    attach_figure("Fig 3: send vs inclusion times", plots.send_vs_inclusion_figure(main_run, "rollup, 5 instances"))
    incl = inclusion_times(main_run.txs, main_run.blocks)
    attach_table("Fig 3 data: per tx", [
        {"tx_hash": t.tx_hash, "instance": t.instance, "submit_s": t.submit_s, "inclusion_seen_s": incl.get(t.tx_hash),
         "soft_latency_s": (incl[t.tx_hash] - t.submit_s) if t.tx_hash in incl else None, "block": t.block_number}
        for t in main_run.txs])
    ok = s["n"] > 0 and s["latency_max_s"] <= spec.PAPER_SOFT_MAX_S
    claim_report({"soft_p50_s": s["latency_p50_s"], "soft_p99_s": s["latency_p99_s"], "soft_max_s": s["latency_max_s"],
                  "within_15s_fraction": s["within_max_fraction"], "txs": s["n"],
                  "paper_median_s": spec.PAPER_SOFT_MEDIAN_S, "paper_max_s": spec.PAPER_SOFT_MAX_S},
                 reproduced=ok, detail="submit (before the HTTP request) -> first local observation of the L2 block")
    assert ok, s


@pytest.mark.claim(spec.B5)
def test_b5_every_tx_soft_then_committed_proven_executed(main_run, l2_settle, claim_report):
    """Every tx of the main run: submit < soft < committed < proven < executed (zks mode; safe/finalized
    in tags mode), and hard >> soft read as median hard / median soft >= 10 (an order of magnitude). The
    ratio is set by the node's batch-sealing criteria and the L1 block time, recorded beside it."""
    st = l2_settle(main_run)
    _skip_without_settlement(st)
    recs = st["records"]
    s = claims_b.finality_summary(recs)
    attach_figure("finality stages per tx", plots.finality_figure(recs, "rollup, 5-instance run"))
    attach_table("per-tx finality", [r.as_dict() for r in recs])
    n_included = sum(1 for t in main_run.txs if t.block_number is not None)
    ratio = s["hard_over_soft_median"] or 0
    ok = s["order_violations"] == 0 and s["txs"] == n_included > 0 and ratio >= HARD_OVER_SOFT_MIN
    config = l2_reads.node_batching_config(main_run_url(main_run)) or {"batching_config": "not reported by the node"}
    claim_report({**{k: v for k, v in s.items() if k != "order_violation_examples"}, "mode": st["mode"],
                  "included_txs": n_included, "hard_over_soft_min": HARD_OVER_SOFT_MIN, **config},
                 reproduced=ok, detail=f"violations: {s['order_violation_examples']}; hard/soft is set by the "
                                       "batch-sealing criteria recorded here (max seconds/blocks/txs per batch)")
    assert s["order_violations"] == 0, s["order_violation_examples"]
    assert s["txs"] == n_included > 0, (s["txs"], n_included)
    assert ratio >= HARD_OVER_SOFT_MIN, f"median hard / median soft = {ratio:.2f} < {HARD_OVER_SOFT_MIN}"


@pytest.mark.claim(spec.B6)
def test_b6_largest_stable_generator_count(profile, l2_load, results_dir, claim_report):
    """Raise the instance count step by step; a step is stable when no accepted tx is lost, none rejected
    or reverted and the node keeps producing blocks. The paper: unstable above 5 instances."""
    steps = []
    for k in STEPS[profile]:
        cfg = instance_cfg(k, profile)
        m = l2_load(cfg).metrics
        row = claims_b.table1_row(k, m, cfg.accounts_per_instance * cfg.txs_per_account, spec.PAPER_TABLE1_TPS.get(k))
        row["blocks_after_run"] = m["blocks_after_run"]
        row["stable"] = claims_b.stable_step(row, m["blocks_after_run"])
        steps.append(row)
    attach_table("B6 steps", steps)
    attach_figure("B6: stability per instance count", plots.stability_figure(steps, paper_max_stable=spec.PAPER_MAX_STABLE_INSTANCES))
    results_path(results_dir, "b6-steps.json").write_text(json.dumps(steps, indent=1))
    # the loss accounting of every step is asserted (never as a deviation) by test_b3_b6_steps_lose_no_accepted_tx
    best = claims_b.largest_stable(steps)
    unstable_above_5 = any(not s["stable"] for s in steps if s["instances"] > 5)
    claim_report({"largest_stable_instances": best, "max_tested": max(STEPS[profile]),
                  "lost_per_step": {s["instances"]: s["lost"] for s in steps},
                  "unstable_above_5": unstable_above_5},
                 reproduced=unstable_above_5, detail="reproduced = some step above 5 instances was unstable")
    assert unstable_above_5, f"stable at every step up to {best} instances"


def test_b3_b6_steps_lose_no_accepted_tx(profile, l2_load, results_dir) -> None:
    """The loss accounting of every B3/B6 step, on the same (memoized) runs, asserted outright: B3 and B6
    are registered deviations (strict xfails), so a step that lost transactions must fail HERE, not hide
    as an expected failure. Per step: every planned tx was sent (none lost before the node answered),
    sent = rejected + included + reverted + missing, and 0 missing (accepted but never included)."""
    rows = []
    for k in STEPS[profile]:
        cfg = instance_cfg(k, profile)
        a = l2_load(cfg).metrics["accounting"]
        rows.append({"instances": k, "planned": cfg.total_txs, **{x: a[x] for x in
                     ("sent", "rejected", "included", "failed", "missing")}})
    attach_table("B3/B6 loss accounting per step", rows)
    results_path(results_dir, "b3-b6-loss-accounting.json").write_text(json.dumps(rows, indent=1))
    bad = [r for r in rows if r["sent"] != r["planned"] or r["missing"] != 0
           or r["sent"] != r["rejected"] + r["included"] + r["failed"] + r["missing"]]
    assert not bad, f"steps that lost transactions: {bad}"


@pytest.mark.claim(spec.B7)
def test_b7_l2_block_utilization_over_time(main_run, claim_report):
    """B7's registered tolerance is *report* (spec.py): the per-block series is the result, and the
    shape verdict (first and last block below the mid-run maximum) is recorded, not asserted. On this
    node the middle of a closed-loop run is a plateau, so the first block sits at the plateau's level in
    some runs (seen: first 0.0857 vs mid max 0.0848) and below it in others (0.090 vs 0.097)."""
    sh = claims_b.block_shape(main_run)
    attach_figure("Fig 4: block utilization", plots.utilization_figure(main_run, "rollup L2 blocks, 5 instances"))
    attach_table("Fig 4 data: L2 blocks", sh["rows"])
    if sh["run_blocks"] < 3:
        pytest.skip(f"not measurable at this run length: the run's txs were included in {sh['run_blocks']} "
                    f"block(s) (txs per block {[r['run_tx_count'] for r in sh['rows']]}, utilization "
                    f"{[round(r['utilization'], 4) for r in sh['rows']]}); a start / middle / end series needs >= 3")
    claim_report({k: v for k, v in sh.items() if k != "rows"}, reproduced=sh["low_start_and_end_peak_mid"],
                 detail="report only (spec tolerance); verdict = first and last run block below the middle "
                        "blocks' maximum (gas used / gas limit)")
    utils = [r["utilization"] for r in sh["rows"]]
    assert all(0.0 < u <= 1.0 for u in utils), utils


@pytest.mark.claim(spec.B8)
def test_b8_tree_is_the_slowest_sealing_stage(main_run, l2_settle, claim_report):
    """Per-stage sealing timings of the batches holding the main run. ``tree`` is the Merkle tree's work
    for the batch, as ZKsync's ``waiting_for_tree`` counts it (its tree component both computes and
    stores the tree): hashing + the changed-node delta + writing those nodes and leaves; ``persist`` is
    the rest of the seal transaction (batch record, block map, commit/fsync). Both parts of ``tree``
    (``hash``, ``write``) are reported, so the narrower reading (hashing only) can be checked too.
    ``state_diff`` is what the seal itself spends on the batch's state diff: merging the diffs the node
    traced block by block as the blocks were recorded (ZKsync's state keeper likewise has each L2 block's
    storage logs when the batch seals); that per-block tracing is reported beside the stages
    (``block_trace_ahead_median_s``) and any block the seal had to trace itself is counted
    (``blocks_traced_at_seal``)."""
    st = l2_settle(main_run)
    _skip_without_settlement(st)
    if st["batches"] is None or not any(b.get("timings_s") for b in st["batches"]):
        pytest.skip("not measurable on this target: per-stage batch-sealing timings need the node's "
                    "rollup_batchTimings method (the embedded node's; ZKsync keeps them in its metrics)")
    d = settlement.stage_dominance(st["batches"])
    attach_table("per-batch stage timings (s)",
                 [{"batch": b["number"], "l2_txs": b["l2TxCount"], **(b["timings_s"] or {})} for b in st["batches"]])
    attach_figure("B8: per-stage timings per batch", plots.stage_timings_figure(st["batches"]))
    all_stages = settlement.stage_dominance(st["batches"], list(st["batches"][0]["timings_s"]))
    measured = {f"{s}_median_s": v["median_s"] for s, v in d["per_stage"].items()}
    measured.update({f"{s}_max_s": v["max_s"] for s, v in d["per_stage"].items()})
    tp = [b["timings_s"]["tree"] + b["timings_s"]["persist"] for b in st["batches"]
          if b.get("timings_s") and "persist" in b["timings_s"]]
    parts = [b["tree_breakdown_s"] for b in st["batches"] if b.get("tree_breakdown_s")]
    for part in ("hash", "write"):
        if parts:
            measured[f"tree_{part}_median_s"] = statistics.median(p[part] for p in parts)
    traces = [b["block_trace"] for b in st["batches"] if b.get("block_trace")]
    if traces:  # the blocks' state-diff tracing, done as each block was recorded (off the sealing path)
        measured["block_trace_ahead_median_s"] = statistics.median(t["traced_ahead_s"] for t in traces)
        measured["blocks_traced_at_seal"] = sum(t["traced_at_seal"] for t in traces)
    measured.update({"dominant_by_median": d["dominant_by_median"], "dominant_by_max": d["dominant_by_max"],
                     "tree_slowest_in_batches": d["slowest_stage_count"].get("tree"), "batches": d["batches"],
                     "tree_plus_persist_median_s": statistics.median(tp) if tp else None,
                     "slowest_stage_overall": all_stages["dominant_by_median"]})
    ok = d["dominant_by_median"] == "tree"
    claim_report(measured, reproduced=ok,
                 detail="sealing stages seal/state_diff/tree/compress/persist (tree = hashing + node delta, "
                        "ZKsync's waiting_for_tree; persist = the SQLite transaction, timed apart)")
    assert ok, d


@pytest.mark.claim(spec.B10_ROLLUP)
def test_b10_gps_beside_tps_on_the_rollup(profile, main_run, l2_load, claim_report):
    """On the rollup, a transfer run and the swap main run (same generator settings): if GPS were the
    capacity figure, both would reach the same gas per second while TPS differs."""
    cfg = main_cfg(profile)
    cfg.workload = "transfer"
    t, s = l2_load(cfg).metrics, main_run.metrics
    gps_ratio = t["gps_sustained"] / s["gps_sustained"]
    tps_ratio = t["tps_sustained"] / s["tps_sustained"]
    ok = abs(gps_ratio - 1) <= 0.1 and tps_ratio > 2
    attach_table("B10 runs (rollup)", [{"workload": w, **{k: m[k] for k in ("tps_sustained", "gps_sustained",
                                                                                "send_rate_tps")}}
                                       for w, m in (("swap", s), ("transfer", t))])
    attach_figure("B10: TPS vs GPS, transfer / swap (rollup)",
                  plots.workload_ratio_figure(s, t, "B10 on the rollup: transfer / swap"))
    claim_report({"swap_tps": s["tps_sustained"], "transfer_tps": t["tps_sustained"], "tps_ratio": tps_ratio,
                  "swap_gps": s["gps_sustained"], "transfer_gps": t["gps_sustained"], "gps_ratio": gps_ratio,
                  "swap_send_rate_tps": s["send_rate_tps"], "transfer_send_rate_tps": t["send_rate_tps"]},
                 reproduced=ok, detail="same criterion as the L1 suite's B10 (GPS within 10 %, TPS > 2x)")
    assert ok, f"gps ratio {gps_ratio:.3f}, tps ratio {tps_ratio:.2f}"


@pytest.mark.claim(spec.B11)
def test_b11_txs_per_block_and_per_batch(main_run, l2_settle, claim_report):
    """Txs per L2 block and per batch of the main run, both halves of the claim: the blocks are small
    (mean txs per block within an order of magnitude of the paper's) and batches aggregate several of them, read
    strictly: EVERY batch holding the main run spans more than one L2 block. Txs per batch follow the node's
    batch-sealing criteria, recorded beside the numbers."""
    st = l2_settle(main_run)
    sh = claims_b.block_shape(main_run)
    measured = {"txs_per_block_mean": sh["txs_per_block_mean"], "txs_per_block_median": sh["txs_per_block_median"],
                "run_blocks": sh["run_blocks"], "paper_txs_per_block": spec.PAPER_TXS_PER_BLOCK,
                "paper_txs_per_batch": spec.PAPER_TXS_PER_BATCH}
    _skip_without_settlement(st)
    if st["batches"] is None:
        pytest.skip(f"not measurable on this target: finality mode {st['mode']!r} exposes no L1 batches "
                    "(blocks and txs per batch need zks_getBlockDetails/zks_getL1BatchDetails); txs per L2 "
                    f"block: {sh['txs_per_block_mean']}")
    measured.update(settlement.txs_per_batch(st["batches"]))
    measured.update(l2_reads.node_batching_config(main_run_url(main_run)) or {})
    measured.update(claims_b.small_blocks(sh, spec.PAPER_TXS_PER_BLOCK, spec.SMALL_BLOCK_FACTOR))
    ok = measured["small_blocks"] and (measured.get("blocks_per_batch_min") or 0) > 1
    attach_json("B11", measured)
    attach_table("B11 batches", [{"batch": b["number"], "l2_txs": b["l2TxCount"], "first_block": b["l2_block_range"][0],
                                  "last_block": b["l2_block_range"][1]} for b in st["batches"]])
    attach_figure("B11: txs per L2 block and per batch", plots.batch_composition_figure(
        sh["rows"], st["batches"], spec.PAPER_TXS_PER_BLOCK, spec.PAPER_TXS_PER_BATCH))
    claim_report(measured, reproduced=ok, detail="blocks small (mean <= 10 x paper) and every batch > 1 L2 "
                                                  "block; batch size follows the node's sealing criteria "
                                                  "(batch_max_* here)")
    assert ok, measured
