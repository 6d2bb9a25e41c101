"""Pure computations behind paper B's rollup claims (harness/chain/claims_b.py, harness/chain/settlement.py), on hand-made records."""

from __future__ import annotations

import pytest

from harness.chain import claims_b, settlement
from harness.chain.finality import TxFinality


def _batch(n, txs, first, last, commit=1000, prove=200, execute=50, timings=None):
    return {"number": n, "l2TxCount": txs, "l2_block_range": [first, last],
            "l1_gas": {"commit": commit, "prove": prove, "execute": execute}, "timings_s": timings}


def test_settlement_cost_amortizes_over_every_tx_in_the_batches() -> None:
    bs = [_batch(1, 100, 1, 3), _batch(2, 150, 4, 6, commit=1500)]
    c = settlement.settlement_cost(bs, l1_gas_per_swap=87_000, l1_gas_per_second=2_500_000)
    per = (1000 + 200 + 50 + 1500 + 200 + 50) / 250
    assert c["amortized_l1_gas_per_tx"] == pytest.approx(per)
    assert c["scaling_factor"] == pytest.approx(87_000 / per)
    assert c["l1_bound_ceiling_tps"] == pytest.approx(2_500_000 / per)
    assert c["amortized_l1_gas_per_tx_by_step"]["commit"] == pytest.approx(2500 / 250)


def test_settlement_cost_counts_blob_gas_and_reports_it_apart() -> None:
    b = _batch(1, 100, 1, 3)
    b["l1_blob_gas"] = {"commit": 131_072, "prove": 0, "execute": 0}
    c = settlement.settlement_cost([b, _batch(2, 100, 4, 6)], 87_000, 2_500_000)
    assert c["amortized_l1_blob_gas_per_tx"] == pytest.approx(131_072 / 200)
    assert c["amortized_l1_execution_gas_per_tx"] == pytest.approx(2 * 1250 / 200)
    assert c["amortized_l1_gas_per_tx"] == pytest.approx((2 * 1250 + 131_072) / 200)
    assert c["scaling_factor"] == pytest.approx(87_000 / c["amortized_l1_gas_per_tx"])


@pytest.mark.parametrize(
    ("batches", "msg"),
    [([_batch(1, 0, 1, 1)], "no transactions"), ([_batch(1, 5, 1, 1, prove=None)], "prove")],
)
def test_settlement_cost_refuses_unusable_input(batches, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        settlement.settlement_cost(batches, 87_000, 2_500_000)
    with pytest.raises(ValueError):
        settlement.settlement_cost([_batch(1, 5, 1, 1)], 0, 2_500_000)


def test_stage_dominance_and_txs_per_batch() -> None:
    t = [{"seal": 0.001, "state_diff": 0.2, "tree": 0.6, "compress": 0.02},
         {"seal": 0.001, "state_diff": 0.3, "tree": 0.25, "compress": 0.02},
         {"seal": 0.001, "state_diff": 0.1, "tree": 0.5, "compress": 0.03}]
    bs = [_batch(i + 1, 10 * (i + 1), 3 * i + 1, 3 * i + 3, timings=x) for i, x in enumerate(t)]
    d = settlement.stage_dominance(bs)
    assert d["dominant_by_median"] == "tree" and d["per_stage"]["tree"]["median_s"] == 0.5
    assert d["slowest_stage_count"] == {"seal": 0, "state_diff": 1, "tree": 2, "compress": 0}
    tb = settlement.txs_per_batch(bs)
    assert tb["txs_per_batch_mean"] == 20 and tb["blocks_per_batch_mean"] == 3
    assert tb["blocks_per_batch_min"] == 3 and tb["batches_with_one_block"] == 0
    with pytest.raises(ValueError, match="timings"):
        settlement.stage_dominance([_batch(1, 1, 1, 1)])


def test_largest_stable_stops_at_the_first_unstable_step() -> None:
    row = {"lost": 0, "rejected": 0, "reverted": 0}
    assert claims_b.stable_step(row, 2) and not claims_b.stable_step(row, 0)
    assert not claims_b.stable_step({**row, "lost": 1}, 2)
    steps = [{"instances": k, "stable": k != 4} for k in (1, 2, 3, 4, 5, 8)]
    assert claims_b.largest_stable(steps) == 3
    assert claims_b.largest_stable([{"instances": 1, "stable": False}]) is None


def test_finality_summary_counts_order_violations() -> None:
    good = [TxFinality(f"0x{i}", 1, 10.0 + i, 10.5 + i, 1, 13.0 + i, 15.0 + i, 16.0 + i) for i in range(4)]
    bad = TxFinality("0xbad", 1, 10.0, 14.0, 1, 13.0, 15.0, 16.0)  # soft after committed
    s = claims_b.finality_summary(good + [bad])
    assert s["order_violations"] == 1 and "0xbad" in s["order_violation_examples"]
    assert s["soft_p50_s"] == pytest.approx(0.5) and s["hard_p50_s"] == pytest.approx(6.0)
    assert s["hard_over_soft_median"] == pytest.approx(12.0)
    assert s["soft_to_committed_p50_s"] == pytest.approx(2.5)


def _times(blocks: list[tuple[float, int]]) -> list[float]:
    """Inclusion times of blocks seen at t holding n txs each."""
    return [t for t, n in blocks for _ in range(n)]


def test_b2_peak_not_resolvable_when_the_burst_fits_in_three_blocks() -> None:
    # blocks of 404, 574, 22 txs seen ~1 s apart: the steady window (first to second-last instant) is
    # one interval, and the peak over >= 1 s intervals is that same interval
    ok, why = claims_b.peak_resolvable(_times([(0.0, 404), (1.06, 574), (1.99, 22)]), 1.0)
    assert not ok and "no instant splits it" in why


def test_b2_peak_not_resolvable_when_a_split_part_is_a_few_ms_under_the_window() -> None:
    ok, _ = claims_b.peak_resolvable(_times([(0.0, 300), (0.99, 300), (2.05, 300), (3.0, 100)]), 1.0)
    assert not ok


def test_b2_peak_resolvable_when_an_instant_splits_the_steady_window_into_two_windows() -> None:
    ok, why = claims_b.peak_resolvable(_times([(0.0, 300), (1.01, 300), (2.03, 300), (3.0, 100)]), 1.0)
    assert ok and why == ""


def test_b11_small_blocks_is_an_order_of_magnitude_of_the_paper_on_the_mean() -> None:
    assert claims_b.small_blocks({"txs_per_block_mean": 90}, 9.0, 10.0) == {
        "small_blocks_limit_txs": 90.0, "small_blocks": True}
    assert not claims_b.small_blocks({"txs_per_block_mean": 91}, 9.0, 10.0)["small_blocks"]
    assert not claims_b.small_blocks({"txs_per_block_mean": None}, 9.0, 10.0)["small_blocks"]
    # a 3-block run whose median is a ramp block: large blocks all the same
    assert not claims_b.small_blocks({"txs_per_block_mean": 333.3, "txs_per_block_median": 65}, 9.0, 10.0)["small_blocks"]
