"""The sealer's choice of blocks for the next batch (harness.rollup.batcher.pick_batch), no node needed."""

from hypothesis import given
from hypothesis import strategies as st

from harness.rollup.batcher import pick_batch
from harness.rollup.config import BatchCriteria


def _blocks(first: int, txs_and_seen: list[tuple[int, float]]) -> list[dict]:
    return [{"number": first + i, "tx_hashes": [f"0x{first + i:04x}{k:04x}" for k in range(n)], "seen_at": t}
            for i, (n, t) in enumerate(txs_and_seen)]


def _nums(blocks):
    return None if blocks is None else [b["number"] for b in blocks]


CRIT = BatchCriteria(max_blocks=3, max_txs=500, max_bytes=120_000, max_seconds=3.0)


def test_cut_at_max_blocks():
    bl = _blocks(1, [(5, 0.0), (5, 1.0), (5, 2.0), (5, 3.0)])
    assert _nums(pick_batch(bl, 1, CRIT, lambda h: 100, now=2.5)) == [1, 2, 3]


def test_a_sealer_that_fell_behind_still_groups_the_blocks_of_the_window():
    """Looked at 30 s late, the blocks seen at 0, 1, 2 s form one batch (max 3 blocks / 3 s); before
    the fix a late sealer took one block per batch because 'now - first seen' was already > 3 s."""
    crit = BatchCriteria(max_blocks=10, max_txs=500, max_bytes=120_000, max_seconds=3.0)
    bl = _blocks(1, [(5, 0.0), (5, 1.0), (5, 2.0), (5, 3.5), (5, 4.0)])
    assert _nums(pick_batch(bl, 1, crit, lambda h: 100, now=30.0)) == [1, 2, 3]
    assert _nums(pick_batch(bl[3:], 4, crit, lambda h: 100, now=30.0)) == [4, 5]


def test_waits_while_the_window_is_open_and_there_is_no_other_cut():
    bl = _blocks(1, [(5, 0.0), (5, 1.0)])
    crit = BatchCriteria(max_blocks=10, max_txs=500, max_bytes=120_000, max_seconds=3.0)
    assert pick_batch(bl, 1, crit, lambda h: 100, now=2.0) is None
    assert _nums(pick_batch(bl, 1, crit, lambda h: 100, now=3.0)) == [1, 2]


def test_leading_empty_blocks_ride_along_and_no_tx_means_no_batch():
    bl = _blocks(1, [(0, 0.0), (0, 1.0), (2, 5.0)])
    crit = BatchCriteria(max_blocks=10, max_txs=500, max_bytes=120_000, max_seconds=3.0)
    assert pick_batch(bl[:2], 1, crit, lambda h: 100, now=100.0) is None
    assert _nums(pick_batch(bl, 1, crit, lambda h: 100, now=8.0)) == [1, 2, 3]


def test_gap_in_recorded_blocks_stops_the_scan():
    bl = _blocks(1, [(5, 0.0)]) + _blocks(3, [(5, 0.5)])
    assert _nums(pick_batch(bl, 1, CRIT, lambda h: 100, now=10.0)) == [1]


def test_cut_at_max_txs_and_max_bytes():
    crit = BatchCriteria(max_blocks=10, max_txs=8, max_bytes=120_000, max_seconds=60.0)
    bl = _blocks(1, [(5, 0.0), (5, 1.0), (5, 2.0)])
    assert _nums(pick_batch(bl, 1, crit, lambda h: 100, now=2.0)) == [1, 2]
    crit = BatchCriteria(max_blocks=10, max_txs=500, max_bytes=1_000, max_seconds=60.0)
    assert _nums(pick_batch(bl, 1, crit, lambda h: 150, now=2.0)) == [1, 2]


@given(
    st.lists(st.tuples(st.integers(0, 6), st.floats(0.0, 2.0)), min_size=1, max_size=30),
    st.integers(1, 6), st.integers(1, 40), st.floats(0.5, 5.0), st.floats(0.0, 100.0),
)
def test_batches_are_prefixes_within_every_criterion(spec, max_blocks, max_txs, max_seconds, late):
    """Whatever the sealer sees, a batch is a non-empty gap-free prefix holding a tx; it never spans more
    than max_blocks blocks (or, when leading empty blocks ride along, than those plus its first tx-bearing
    block), more than max_txs txs (beyond the block that reached it), or blocks seen max_seconds or more
    after its first tx-bearing block."""
    seen, t = [], 0.0
    for n, dt in spec:
        t += dt
        seen.append((n, t))
    bl = _blocks(1, seen)
    crit = BatchCriteria(max_blocks=max_blocks, max_txs=max_txs, max_bytes=10**9, max_seconds=max_seconds)
    take = pick_batch(bl, 1, crit, lambda h: 1, now=t + late)
    if take is None:
        return
    assert take and take == bl[: len(take)]
    assert any(b["tx_hashes"] for b in take)
    first_tx = next(b for b in take if b["tx_hashes"])
    assert all(b["seen_at"] - first_tx["seen_at"] < max_seconds for b in take)
    assert sum(len(b["tx_hashes"]) for b in take[:-1]) < max_txs
    assert len(take) <= max(max_blocks, take.index(first_tx) + 1)
