"""hypothesis edge tests of the run metrics and the accounting over synthetic runs (no chain).

A synthetic run is a list of blocks (seen times with ties inside and across blocks, some blocks never
observed) and a list of txs, each included (status 1 or 0) in one of the blocks, rejected at submit,
or missing (accepted, no receipt). Properties: the accounting partitions every tx; summarize,
inclusion_times and utilization do not depend on the order of the observations (st.permutations);
equal clock readings merge into one instant; unobserved blocks contribute nothing; the peak is never
below a sustained rate measured over a window at least as long as the peak window; the undefined
cases (empty window, one instant) are None, not 0.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.chain import metrics as m

GAPS = [0.0, 0.0, 0.25, 0.5, 0.999, 1.0, 1.001, 1.5, 12.0]  # 0.0 twice: clock ties across blocks are common


@st.composite
def runs(draw, min_blocks: int = 0, max_blocks: int = 10):
    """(txs, blocks, expected counts) of a synthetic run; blocks not observed are left out of ``blocks``."""
    n_blocks = draw(st.integers(min_blocks, max_blocks))
    gaps = draw(st.lists(st.sampled_from(GAPS), min_size=n_blocks, max_size=n_blocks))
    observed = draw(st.lists(st.booleans(), min_size=n_blocks, max_size=n_blocks))
    seen, t = [], 1000.0
    for g in gaps:
        t += g
        seen.append(t)
    kinds = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["ok", "ok", "ok", "failed", "rejected", "missing"]),
                st.integers(0, max(0, n_blocks - 1)),
                st.integers(21_000, 200_000),
                st.floats(0, 30, allow_nan=False),
            ),
            max_size=60,
        )
    )
    txs, per_block = [], {i: [] for i in range(n_blocks)}
    expected = {"sent": 0, "included": 0, "failed": 0, "rejected": 0, "missing": 0}
    for k, (kind, b, gas, lag) in enumerate(kinds):
        h = f"0x{k:04x}"
        submit = (seen[b] if n_blocks else 1000.0) - lag
        if kind in ("ok", "failed") and n_blocks == 0:
            kind = "missing"
        expected["sent"] += 1
        if kind == "rejected":
            expected["rejected"] += 1
            txs.append(m.TxObs(h, k % 3, submit, False, "nonce too low"))
        elif kind == "missing":
            expected["missing"] += 1
            txs.append(m.TxObs(h, k % 3, submit, True, gas_limit=gas))
        else:
            expected["included" if kind == "ok" else "failed"] += 1
            per_block[b].append((h, gas))
            txs.append(
                m.TxObs(h, k % 3, submit, True, None, b + 1, 1 if kind == "ok" else 0, gas, gas_limit=gas + 5)
            )
    blocks = []
    for i in range(n_blocks):
        if not observed[i]:
            continue
        used = sum(g for _, g in per_block[i])
        blocks.append(
            m.BlockObs(
                i + 1, seen[i], int(seen[i]), used, max(used, 30_000_000), tuple(h for h, _ in per_block[i])
            )
        )
    return txs, blocks, expected


def _close(a, b) -> bool:
    """Equal, or equal floats up to summation order (sums of the same terms in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@given(runs())
def test_accounting_partitions_every_tx(run) -> None:
    txs, _blocks, expected = run
    acc = m.accounting(txs)
    assert acc.sent == len(txs) == acc.included + acc.failed + acc.rejected + acc.missing
    assert {k: getattr(acc, k) for k in expected} == expected
    assert len(acc.missing_hashes) == acc.missing and len(set(acc.missing_hashes)) == acc.missing


@given(runs().flatmap(lambda r: st.tuples(st.just(r), st.permutations(r[0]), st.permutations(r[1]))))
def test_summary_does_not_depend_on_observation_order(args) -> None:
    (txs, blocks, _), txs_perm, blocks_perm = args
    assert _close(m.summarize(txs, blocks), m.summarize(list(txs_perm), list(blocks_perm)))
    assert m.inclusion_times(txs, blocks) == m.inclusion_times(txs_perm, blocks_perm)
    run = {t.tx_hash for t in txs}
    assert m.utilization(blocks, run) == m.utilization(blocks_perm, run)


@given(runs())
def test_inclusion_times_only_for_observed_blocks(run) -> None:
    txs, blocks, _ = run
    seen = {b.number: b.seen_s for b in blocks}
    incl = m.inclusion_times(txs, blocks)
    for tx in txs:
        if tx.block_number in seen:
            assert incl[tx.tx_hash] == seen[tx.block_number]
        else:
            assert tx.tx_hash not in incl  # rejected, missing, or in a block never observed
    s = m.summarize(txs, blocks)
    ok_times = [incl[t.tx_hash] for t in txs if t.status == 1 and t.tx_hash in incl]
    assert s["tps_steady_window_rate"] == m.sustained_tps(ok_times)
    w = m.steady_window(ok_times)
    if w is not None and len({t for t in ok_times if w[0] <= t <= w[1]}) >= m.MIN_STEADY_INSTANTS:
        assert s["tps_method"] == "steady window" and s["tps_sustained"] == m.sustained_tps(ok_times)
    else:  # too short for a steady state: the burst rate, from the first submit to the last inclusion
        first = min((t.submit_s for t in txs), default=None)
        assert s["tps_method"].startswith("burst")
        assert s["tps_sustained"] == m.burst_rate(ok_times, first)
    assert s["n"] == sum(1 for t in txs if t.accepted and t.tx_hash in incl)  # latencies counted


@given(runs(min_blocks=1))
def test_sustained_never_above_peak_when_its_window_is_at_least_the_peak_window(run) -> None:
    txs, blocks, _ = run
    incl = m.inclusion_times(txs, blocks)
    times = [incl[t.tx_hash] for t in txs if t.status == 1 and t.tx_hash in incl]
    sustained = m.sustained_tps(times)
    peak, at = m.peak_tps(times, 1.0)
    instants = sorted(set(times))
    if sustained is None:
        assert len(instants) < 2
        return
    t_end = instants[-2] if len(instants) >= 3 else instants[-1]
    if t_end - instants[0] >= 1.0:
        assert peak is not None and peak >= sustained - 1e-9
        assert at in instants
    if peak is not None:
        assert 0 <= peak <= len(times)  # every peak interval is >= 1 s long


@given(runs())
def test_undefined_windows_are_none_and_counts_are_zero_not_errors(run) -> None:
    txs, blocks, _ = run
    s = m.summarize(txs, blocks)
    incl = m.inclusion_times(txs, blocks)
    instants = {incl[t.tx_hash] for t in txs if t.status == 1 and t.tx_hash in incl}
    if len(instants) < 2:
        assert s["tps_steady_window_rate"] is None
    if not instants:
        assert s["tps_sustained"] is None and s["gps_sustained"] is None
        assert s["tps_peak"] is None and s["gas_per_tx_mean"] is None
    if not any(t.accepted and t.tx_hash in incl for t in txs):
        assert s["latency_p50_s"] is None and s["latency_max_s"] is None


def test_empty_run() -> None:
    s = m.summarize([], [])
    assert s["accounting"]["sent"] == 0
    assert s["tps_sustained"] is s["tps_peak"] is s["tps_paper_formula"] is s["gps_sustained"] is None
    assert s["latency_p50_s"] is None and s["run_blocks"] == 0


def test_single_block_run() -> None:
    b = m.BlockObs(7, 50.0, 1_700_000_000, 870_000, 2_500_000, tuple(f"0x{i}" for i in range(10)))
    txs = [m.TxObs(h, 0, 49.0, True, None, 7, 1, 87_000, 92_000) for h in b.tx_hashes]
    s = m.summarize(txs, [b])
    assert s["tps_steady_window_rate"] is None and s["tps_peak"] is None  # one instant: no window
    assert s["tps_sustained"] == pytest.approx(10.0)  # the burst rate: 10 txs, submitted at 49, seen at 50
    assert s["tps_paper_formula"] == 10.0  # whole seconds floored at 1
    assert s["latency_p50_s"] == pytest.approx(1.0)
    assert m.utilization([b])[0]["utilization"] == pytest.approx(0.348)


@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 40),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.integers(0, 5),
)
def test_clock_ties_across_blocks_merge_into_one_instant(n_a, n_b, n_c, gap, n_tail) -> None:
    """Two blocks seen at the same local time are one instant: the summary equals that of one block
    holding both blocks' txs (TPS, GPS, peak, latency); only the block counts differ."""

    def run(split: bool):
        groups = [(1, 100.0, n_a), (2, 100.0, n_b)] if split else [(1, 100.0, n_a + n_b)]
        groups += [(3, 100.0 + gap, n_c), (4, 100.0 + 2 * gap, n_tail)]
        blocks, txs, k = [], [], 0
        for num, seen, n in groups:
            hs = tuple(f"0x{k + i:04x}" for i in range(n))
            k += n
            blocks.append(m.BlockObs(num, seen, int(seen), 87_000 * n, 30_000_000, hs))
            txs += [m.TxObs(h, 0, 99.0, True, None, num, 1, 87_000, 92_000) for h in hs]
        return m.summarize(txs, blocks)

    a, b = run(True), run(False)
    a.pop("run_blocks"), b.pop("run_blocks")
    assert _close(a, b)


@given(st.lists(st.floats(0, 1e3, allow_nan=False), max_size=100), st.sampled_from([0.5, 1.0, 3.0]))
def test_tps_series_counts_every_time_once(times, bin_s) -> None:
    series = m.tps_series(times, bin_s)
    assert sum(v * bin_s for _, v in series) == pytest.approx(len(times))
    assert all(s2 - s1 == pytest.approx(bin_s) for (s1, _), (s2, _) in zip(series, series[1:], strict=False))


@given(runs())
def test_utilization_rows(run) -> None:
    txs, blocks, _ = run
    rows = m.utilization(blocks, {t.tx_hash for t in txs})
    assert [r["number"] for r in rows] == sorted(b.number for b in blocks)
    for r in rows:
        assert 0 <= r["utilization"] <= 1 and 0 <= r["run_tx_count"] <= r["tx_count"] and r["t_rel_s"] >= 0


@given(runs())
def test_every_generated_receipt_is_valid_and_bad_ones_are_named(run) -> None:
    txs, _, _ = run
    m.check_receipts(txs)  # the generator only makes valid receipts
    bad = [
        m.TxObs("0xa", 0, 0.0, True, None, 3, 1, 100_000, 90_000),  # gas used above its limit
        m.TxObs("0xb", 0, 0.0, True, None, 3, 2, 50_000, 90_000),  # status 2
        m.TxObs("0xc", 0, 0.0, True, None, 3, 1, 0, 90_000),  # no gas used
        m.TxObs("0xd", 0, 0.0, True, None, None, 1, 21_000, 21_000),  # receipt without a block
    ]
    with pytest.raises(m.ReceiptError, match="4 invalid") as e:
        m.check_receipts([*txs, *bad])
    for h in ("0xa", "0xb", "0xc", "0xd"):
        assert f"{h}:" in str(e.value)


@given(runs())
def test_paper_formula_is_included_over_whole_seconds(run) -> None:
    txs, blocks, _ = run
    s = m.summarize(txs, blocks)
    by_num = {b.number: b for b in blocks}
    run_blocks = {t.block_number for t in txs if t.block_number is not None}
    ts = [by_num[n].timestamp for n in run_blocks if n in by_num]
    incl = m.inclusion_times(txs, blocks)
    n_ok = sum(1 for t in txs if t.status == 1 and t.tx_hash in incl)
    if ts:
        assert s["tps_paper_formula"] == pytest.approx(n_ok / max(1, max(ts) - min(ts)))
    else:
        assert s["tps_paper_formula"] is None
