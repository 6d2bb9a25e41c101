"""Property and edge tests of harness.chain.metrics (pure functions, no chain)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.chain import metrics as m

times_st = st.lists(
    st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False), max_size=200
)


def test_empty_windows_are_undefined_not_zero() -> None:
    assert m.sustained_tps([]) is None
    assert m.peak_tps([]) == (None, None)
    assert m.paper_tps(0, []) is None
    assert m.percentile([], 50) is None
    assert m.latency_stats([])["latency_p50_s"] is None
    assert m.utilization([]) == []
    assert m.tps_series([]) == []


def test_single_block_has_no_sustained_rate_and_paper_formula_floors_at_one_second() -> None:
    times = [5.0] * 30  # 30 txs all in one block
    assert m.sustained_tps(times) is None
    assert m.peak_tps(times) == (None, None)
    assert m.paper_tps(30, [1700000000]) == 30.0


def test_steady_blocks_give_the_block_rate() -> None:
    # 10 blocks 1 s apart, 28 txs each: first (ramp-up) and last (ramp-down) excluded
    times = [float(b) for b in range(10) for _ in range(28)]
    assert m.sustained_tps(times) == pytest.approx(28.0)
    peak, at = m.peak_tps(times, 1.0)
    assert peak == pytest.approx(28.0)


def test_peak_is_not_doubled_by_two_blocks_seen_just_under_a_window_apart() -> None:
    times = [0.0] * 28 + [0.995] * 28 + [2.0] * 28
    peak, _ = m.peak_tps(times, 1.0)
    # a fixed [t, t+1) bin would count 56 in one second; the honest peak is 28/s over (0, 2]
    assert peak == pytest.approx(28.0)


def test_clock_ties_merge_into_one_instant() -> None:
    a = m.sustained_tps([1.0, 1.0, 2.0, 2.0, 3.0])
    assert a == pytest.approx(2.0)  # window (1, 2]: 2 txs over 1 s; last instant trimmed


@given(times_st.flatmap(lambda ts: st.tuples(st.just(ts), st.permutations(ts))))
def test_order_does_not_matter(args: tuple[list[float], list[float]]) -> None:
    times, permuted = args
    assert m.sustained_tps(times) == m.sustained_tps(permuted)
    assert m.peak_tps(times) == m.peak_tps(permuted)


def test_peak_counts_a_burst_just_inside_the_window_of_every_later_instant() -> None:
    # 1000 txs seen at 0.2, then sparse blocks: the only intervals >= 1 s that contain the burst start
    # at 0.0; a shortest-interval-only peak (t_j = last instant >= 1 s before t_i) never saw it and
    # reported a peak far below the sustained rate
    times = [0.0] + [0.2] * 1000 + [1.5, 1.6]
    sustained = m.sustained_tps(times)
    peak, at = m.peak_tps(times, 1.0)
    assert sustained == pytest.approx(1001 / 1.5)
    assert peak >= sustained and at == 0.0


@given(times_st)
def test_rates_are_non_negative_and_bounded_by_count_over_min_span(times: list[float]) -> None:
    s = m.sustained_tps(times)
    if s is not None:
        assert s >= 0 and math.isfinite(s)
    p, _ = m.peak_tps(times, 1.0)
    if p is not None:
        assert 0 <= p <= len(times)  # each window is >= 1 s long


@given(st.lists(st.floats(min_value=0, max_value=1e3, allow_nan=False), min_size=1, max_size=100))
def test_percentiles_are_ordered_and_are_observed_values(lat: list[float]) -> None:
    s = m.latency_stats(lat)
    assert s["latency_p50_s"] <= s["latency_p90_s"] <= s["latency_p99_s"] <= s["latency_max_s"]
    assert s["latency_p50_s"] in lat and s["latency_p99_s"] in lat


def test_weights_length_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="weights"):
        m.sustained_rate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="window_s"):
        m.peak_tps([1.0], 0)
    with pytest.raises(ValueError, match="finite"):
        m.sustained_tps([1.0, float("nan")])


tx_st = st.builds(
    m.TxObs,
    tx_hash=st.text("0123456789abcdef", min_size=4, max_size=8).map(lambda s: "0x" + s),
    instance=st.integers(0, 4),
    submit_s=st.floats(0, 100, allow_nan=False),
    accepted=st.booleans(),
    error=st.none(),
    block_number=st.one_of(st.none(), st.integers(1, 20)),
    status=st.one_of(st.none(), st.sampled_from([0, 1])),
    gas_used=st.one_of(st.none(), st.integers(21000, 200000)),
)


@given(st.lists(tx_st, max_size=100))
def test_accounting_partitions_every_tx(txs: list[m.TxObs]) -> None:
    acc = m.accounting(txs)
    assert acc.sent == len(txs)
    assert acc.rejected + acc.included + acc.failed + acc.missing == acc.sent
    assert len(acc.missing_hashes) == acc.missing
    if acc.missing:
        with pytest.raises(m.MissingTransactionsError) as e:
            m.check_no_missing(acc)
        assert acc.missing_hashes[0] in str(e.value)
    else:
        m.check_no_missing(acc)


def test_accounting_rejects_a_bogus_status() -> None:
    with pytest.raises(ValueError, match="status"):
        m.accounting([m.TxObs("0x1", 0, 0.0, True, status=2)])


def test_summary_of_a_small_run() -> None:
    blocks = [
        m.BlockObs(n, 10.0 + n, 1000 + n, 2_400_000, 2_500_000, tuple(f"0x{n}{i}" for i in range(3)))
        for n in range(1, 5)
    ]
    txs = [m.TxObs(h, 0, 10.0, True, None, b.number, 1, 87_000) for b in blocks for h in b.tx_hashes]
    txs.append(m.TxObs("0xdead", 0, 10.0, False, "nonce too low"))
    s = m.summarize(txs, blocks)
    assert s["accounting"]["included"] == 12 and s["accounting"]["rejected"] == 1
    assert s["tps_sustained"] == pytest.approx(3.0)
    assert s["gps_sustained"] == pytest.approx(3 * 87_000)
    assert s["tps_paper_formula"] == pytest.approx(12 / 3)
    assert s["latency_p50_s"] == pytest.approx(2.0)


def test_a_burst_included_in_two_blocks_is_rated_from_first_submit_to_last_inclusion() -> None:
    """1000 transfers submitted from t = 10.0, included 980 at 11.0 and 20 at 12.0: the steady window
    (two instants) would count only the second block (20 TPS); the run's rate is the burst's."""
    blocks = [m.BlockObs(1, 11.0, 1001, 980 * 21_000, 10**8, tuple(f"0xa{i}" for i in range(980))),
              m.BlockObs(2, 12.0, 1002, 20 * 21_000, 10**8, tuple(f"0xb{i}" for i in range(20)))]
    txs = [m.TxObs(h, 0, 10.0, True, None, b.number, 1, 21_000) for b in blocks for h in b.tx_hashes]
    s = m.summarize(txs, blocks)
    assert s["tps_steady_window_rate"] == pytest.approx(20.0)
    assert s["tps_method"].startswith("burst")
    assert s["tps_sustained"] == pytest.approx(1000 / 2.0)
    assert s["gps_sustained"] == pytest.approx(1000 * 21_000 / 2.0)
