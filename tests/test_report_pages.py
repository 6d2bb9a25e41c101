"""Claim and benchmark pages (harness.report.claim_page / bench) and the report tree (fixtures.claims)."""

from __future__ import annotations

import types

from fixtures.claims import claims_by_id, tree_position
from harness.report.bench import bench_page_html, other_sides, ratio_rows, stats_rows, timing_figure
from harness.report.claim_page import ClaimPage, claim_page_html, page_verdict

PNG = b"\x89PNG\r\n\x1a\nfake"


def _page(**kw) -> ClaimPage:
    base = dict(claim_id="A3", statement="prunability predicts the gap", section="Table 1", paper_ref="arXiv:1v1",
                paper_value="tau 0.6496", tolerance="tau > 0", profile="smoke")
    return ClaimPage(**{**base, **kw})


def test_claim_page_shows_paper_measured_verdict_and_figure_inline():
    v = {"measured": {"tau": 0.86812, "ci": [0.698, 1.0]}, "reproduced": True, "paper_value": "tau 0.6496",
         "tolerance": "tau > 0", "detail": "14 of 16 models"}
    out = claim_page_html(_page(verdicts=[v], outcome="passed", figure=("A3 scatter", PNG), other_figures=["b"]))
    assert "Paper vs measured" in out and "tau 0.6496" in out and "0.8681" in out and "[0.698, 1]" in out
    assert ">reproduced<" in out and 'src="data:image/png;base64,' in out and "A3 scatter" in out
    assert "14 of 16 models" in out


def test_known_deviation_and_unregistered_failure_are_told_apart():
    v = {"measured": {"tau": -0.89}, "reproduced": False}
    dev = _page(verdicts=[v], registered_deviation="tau -0.890 (registered)", outcome="xfailed")
    assert page_verdict(dev) == "known deviation" and "tau -0.890 (registered)" in claim_page_html(dev)
    assert page_verdict(_page(verdicts=[v], outcome="failed")) == "NOT reproduced"
    assert page_verdict(_page(outcome="failed")) == "NOT reproduced"  # crashed before claim_report
    assert page_verdict(_page(verdicts=[{"measured": {}, "reproduced": True}], tolerance="report")) == "reported"


def test_extra_tables_are_inlined_and_escaped():
    out = claim_page_html(_page(tables=[("A3 paper vs measured, per statistic",
                                          [{"quantity": "<tau>", "paper": 0.6496}], ["quantity", "paper"])]))
    assert "&lt;tau&gt;" in out and "0.6496" in out


EXTRA = {"claim": "A3", "reference_seconds_median": 0.05, "reference_seconds_rounds": [0.05, 0.06, 0.04],
         "fast_seconds_median": 0.016, "speedup_reference_over_fast": 3.1, "model": "mlp-w64-d2", "k_fast": 900}
STATS = {"min": 0.015, "median": 0.016, "iqr": 0.001, "q1": 0.0155, "q3": 0.0165, "mean": 0.016,
         "stddev": 0.0007, "max": 0.017, "rounds": 5, "ops": 62.5, "data": [0.015, 0.016, 0.016, 0.017, 0.0158]}


def test_benchmark_tables_ratio_and_other_side():
    assert [r["statistic"] for r in stats_rows(STATS)][:4] == ["min (s)", "median (s)", "IQR (s)", "Q1 (s)"]
    assert ratio_rows(EXTRA) == [{"ratio": "speedup_reference_over_fast", "value": 3.1}]
    samples, medians = other_sides(EXTRA)
    assert samples == {"reference": [0.05, 0.06, 0.04]} and medians == {"fast": 0.016}
    fig = timing_figure("t", STATS["data"], {**EXTRA, "fast_seconds_median": 0.016})
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["fast (5 rounds)", "reference (3 rounds)"]  # our median names our side
    out = bench_page_html("t", STATS, EXTRA, PNG, outcome="passed", claim_line="A3: x")
    assert "speedup_reference_over_fast" in out and "median (s)" in out and "data:image/png" in out
    assert "Side by side" in out and "k_fast" in out


def _item(module: str, name: str):
    return types.SimpleNamespace(module=types.SimpleNamespace(__name__=module), name=name, originalname=name)


def test_every_test_has_a_place_in_the_tree():
    epic, feature, ids = tree_position(_item("suites.rollup.test_b_rollup", "test_b3_b6_steps_lose_no_accepted_tx"))
    assert "2506.00500" in epic and feature == "B3" and ids == ["B3", "B6"]
    epic, feature, ids = tree_position(_item("suites.rollup.test_b_rollup", "test_helper_check"))
    assert "2506.00500" in epic and feature == "other checks" and ids == []
    assert tree_position(_item("tests.test_compare", "test_x"))[:2] == ("Project tests (unit, property)",
                                                                        "test_compare")
    assert {"A3", "B3"} <= set(claims_by_id())
