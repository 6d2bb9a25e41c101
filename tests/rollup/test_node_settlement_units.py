"""Unit tests of the pipeline's settlement bookkeeping that need no engine and no L1: when a step counts
(0 confirmations: at the receipt; more: only through the confirmer), what the ``finalized`` tag covers,
and what happens to a refusal an older node persisted for an L1 state read."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.rollup.batcher import Pipeline
from harness.rollup.config import NodeConfig
from harness.rollup.merkle import SparseMerkleTree
from harness.rollup.store import NodeDb


def _rec(n: int, status: str, **extra) -> dict:
    return {"number": n, "status": status, "first_block": 3 * n - 2, "last_block": 3 * n, "timings": {},
            "prev_root": "0x" + "00" * 32, "new_root": "0x" + "00" * 32, "data_hash": "0x" + "00" * 32, **extra}


def _step(block: int) -> dict:
    return {"tx_hash": "0x" + f"{block:064x}", "block_number": block, "block_hash": "0x" + f"{block + 1:064x}",
            "at": 1.0, "gas_used": 1}


@pytest.fixture
def make(tmp_path: Path):
    dbs: list[NodeDb] = []

    def make(confirmations: int, recs: list[dict]) -> Pipeline:
        db = NodeDb(tmp_path / f"node{len(dbs)}.sqlite")
        dbs.append(db)
        for r in recs:
            db.put_batch(r)
        cfg = NodeConfig(data_dir=tmp_path / f"d{len(dbs)}", l1_confirmations=confirmations)
        return Pipeline(cfg, db, {}, None, SparseMerkleTree(8), lambda: None, {}, l1=None, prover=None)

    try:
        yield make
    finally:
        for db in dbs:
            db.close()


def test_zero_confirmations_count_at_the_receipt(make) -> None:
    p = make(0, [_rec(1, "sealed")])
    p._submitted("commit", 1, _step(10), {"commit": 0.5})
    assert p.batches[1]["status"] == "committed" and p.batches[1]["commit"]["block_number"] == 10
    assert p.confirmer.inflight["commit"] == {} and p.l1_totals["committed"] == 1


def test_with_confirmations_a_receipt_waits_for_the_confirmer(make) -> None:
    p = make(2, [_rec(1, "sealed"), _rec(2, "sealed")])
    p._submitted("commit", 1, _step(10), {"commit": 0.5})
    assert p.batches[1]["status"] == "sealed" and 1 in p.confirmer.inflight["commit"]
    assert p._next_to_send("commit")["number"] == 2  # the committer goes on with the next batch meanwhile
    q = p.confirmer.inflight["commit"].pop(1)
    assert p._advance("commit", 1, q.result, q.timings, q.extra) and p.batches[1]["status"] == "committed"
    # a step whose batch moved under it (a reorg demoted it) is not recorded
    assert not p._advance("commit", 1, q.result, q.timings, q.extra)


def test_finalized_tag_covers_only_batches_executed_at_or_below_l1_finalized(make) -> None:
    p = make(2, [_rec(1, "executed", execute=_step(20)), _rec(2, "executed", execute=_step(25)),
                 _rec(3, "proven")])
    assert p.tag_block("finalized") == 0  # L1's finalized block not read yet
    p.confirmer.finalized = 22
    assert p.tag_block("finalized") == 3 and p.tag_block("safe") == 9
    p.confirmer.finalized = 25
    assert p.tag_block("finalized") == 6


def test_a_persisted_refusal_for_not_committed_on_l1_is_cleared_a_real_one_stays(make) -> None:
    p = make(2, [_rec(1, "refused", refusal="batch 1: data on L1 unusable: batch 1 is not committed on L1")])
    assert p.halted is None and p.batches[1]["status"] == "committed"
    assert "not committed" in p.batches[1]["refusal_cleared"]["refusal"]
    q = make(2, [_rec(1, "refused", refusal="batch 1: re-executed root 0x12 != L1 newRoot 0x34")])
    assert q.halted and "refused (persisted)" in q.halted and q.batches[1]["status"] == "refused"


def test_a_proof_undone_while_the_prover_replays_that_batch_restarts_the_prover(make) -> None:
    """The race behind a node that never proved again after an L1 reorg (test_l1_reorg, 1 run in 3): the
    prover, starting over, is replaying batch 1 (proven on L1) when the confirmer finds that proof undone.
    The prover must start over once more (its tree holds batch 1, which must be proven again), not go on to
    batch 2 with batch 1 left unproven forever."""
    from types import SimpleNamespace

    from harness.rollup.pipeline_common import StageAbort

    p = make(2, [_rec(1, "proven", commit=_step(10), prove=_step(11)), _rec(2, "committed", commit=_step(12))])
    p.confirmer._rebuild = lambda n, step: None  # L1 (as read now) no longer has batch 1's proof
    p.published = lambda n, abort=None: SimpleNamespace(batch_number=n)
    replayed: list[int] = []

    def replay(pub, tree) -> None:
        replayed.append(pub.batch_number)
        if pub.batch_number == 1:  # the confirmer's deep scan, while this batch is being replayed
            p.confirmer._lost_confirmed(1, "prove", dict(p.batches[1]["prove"]))
        else:
            p.stop_event.set()  # went on past batch 1: end the stage (the assertion below fails)

    p._replay_on_prover = replay
    with pytest.raises(StageAbort):
        p._prover()
    assert replayed == [1] and p.batches[1]["status"] == "committed"
    assert p._next_to_send("prove")["number"] == 1


def test_receipts_dropped_with_an_undone_step_are_recorded_as_lost(make) -> None:
    """The loss behind test_l1_reorg's "not both kinds of loss seen" (1 run in ~10): two reorgs before the
    confirmer's next look at its awaiting receipts; the deep scan finds batch 3's counted commit undone and drops
    batch 4's awaiting commit with it (mined later, so gone too). That drop must be recorded like any other loss,
    not vanish from the batch's history."""
    from types import SimpleNamespace

    p = make(2, [_rec(3, "committed", commit=_step(13)), _rec(4, "sealed")])
    p.confirmer._rebuild = lambda n, step: None  # L1 (as read now) has neither commit
    p.l1 = SimpleNamespace(block_hashes=lambda ns: {b: "0x" + "ee" * 32 for b in ns})  # every block replaced
    p._submitted("commit", 4, _step(16), {"commit": 0.5})
    p.confirmer._lost_confirmed(3, "commit", dict(p.batches[3]["commit"]))
    assert p.batches[3]["status"] == "sealed" and p.confirmer.inflight["commit"] == {}
    assert [e["phase"] for e in p.batches[3]["l1_reorged"]] == ["confirmed"]
    (lost,) = p.batches[4]["l1_reorged"]
    assert lost["phase"] == "unconfirmed" and lost["block_number"] == 16 and not lost["re_included"]
    assert "batch 3 commit" in lost["cause"] and p.confirmer.reorg_count == 2
    assert [q["number"] for q in (p._next_to_send("commit"),)] == [3]  # both are sent again, in order
    # a receipt whose block L1 still has is dropped (sent again, found done) but not counted as lost
    p._submitted("commit", 4, _step(17), {"commit": 0.5})
    p.batches[3] = _rec(3, "committed", commit=_step(14))
    p.l1 = SimpleNamespace(block_hashes=lambda ns: {b: _step(b)["block_hash"] for b in ns if b != 14})
    p.confirmer._lost_confirmed(3, "commit", dict(p.batches[3]["commit"]))
    assert len(p.batches[4]["l1_reorged"]) == 1 and p.confirmer.inflight["commit"] == {}
