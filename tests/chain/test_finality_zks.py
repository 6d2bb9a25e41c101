"""The finality tracker in zks mode against the embedded rollup node (zks_getBlockDetails)."""

from __future__ import annotations

import time

import pytest

from harness.chain import uniswap
from harness.chain.finality import FinalityTracker, parse_time
from harness.chain.rpc import Rpc, to_int

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _send_self_transfer(url: str, account) -> tuple[str, float]:
    """Send a 1-wei transfer to itself; return its hash and the local submit time."""
    with Rpc(url) as rpc:
        fees = uniswap.fee_params(rpc)
        nonce = to_int(rpc.call("eth_getTransactionCount", [account.address, "pending"]))
        raw, h = account.sign({"type": 2, "chainId": uniswap.chain_id(rpc), "nonce": nonce,
                               "to": account.address, "value": 1, "gas": 21_000, "data": "0x",
                               **fees.fields()})
        submit = time.time()
        rpc.call("eth_sendRawTransaction", [raw])
    return h, submit


def test_auto_detects_zks_and_every_stage_is_ordered(rollup_env, rollup_account) -> None:
    h, submit = _send_self_transfer(rollup_env.url, rollup_account)
    with FinalityTracker(rollup_env.url, mode="auto", poll_s=0.1) as tr:
        assert tr.mode == "zks" and tr.hard_stage == "executed"
        [rec] = tr.track_txs([(h, submit)], timeout_s=180)
        assert rec.order_violations() == [], rec
        assert rec.batch is not None and rec.safe_s is None
        # node-reported instants (float fields preferred) vs this tracker's own first observations
        blk = tr.wait_blocks([rec.block_number], timeout_s=10)[rec.block_number]
        details = tr.rpc.call("zks_getBlockDetails", [rec.block_number])
    for stage in ("committed", "proven", "executed"):
        assert blk.reported[stage] == details[f"{stage}AtUnix"]
        assert parse_time(details[f"{stage}At"]) == pytest.approx(details[f"{stage}AtUnix"], abs=1e-5)
        assert blk.observed[stage] >= blk.reported[stage] - 0.05  # same machine, same clock
    assert rec.executed_s - rec.soft_s > 0


def test_safe_and_finalized_tags_follow_l1_settlement(rollup_env, rollup_account) -> None:
    """On the embedded node the tags are L1 settlement, not the L2 engine's latest-32/-64: ``safe`` = last
    L2 block of the last batch committed on L1, ``finalized`` = last L2 block of the last executed batch.
    Tracked in tags mode, a tx's block is finalized only once zks_getBlockDetails says its batch executed."""
    h, submit = _send_self_transfer(rollup_env.url, rollup_account)
    with FinalityTracker(rollup_env.url, mode="tags", poll_s=0.1) as tr:
        [rec] = tr.track_txs([(h, submit)], timeout_s=180)
        assert rec.order_violations() == [] and rec.safe_s and rec.finalized_s, rec
        d = tr.rpc.call("zks_getBlockDetails", [rec.block_number])
        assert d["status"] == "verified" and rec.finalized_s >= d["executedAtUnix"] - 0.05, (rec, d)
        assert rec.safe_s >= d["committedAtUnix"] - 0.05
        st = tr.rpc.call("rollup_status")
        safe, fin = (to_int(tr.rpc.call("eth_getBlockByNumber", [t, False])["number"]) for t in ("safe", "finalized"))
        latest = to_int(tr.rpc.call("eth_blockNumber"))
    assert fin <= safe <= latest
    # each tag is the last block of a batch at that L1 step (the status snapshot is a moment earlier)
    assert st["blockTags"]["finalized"] <= fin and st["blockTags"]["safe"] <= safe
    with Rpc(rollup_env.url) as rpc:
        fb = rpc.call("zks_getBlockDetails", [fin])
        assert fb["status"] == "verified" and fb["l1BatchNumber"] is not None
        batch = rpc.call("zks_getL1BatchDetails", [fb["l1BatchNumber"]])
        assert batch["lastBlock"] == fin
        # any method taking a block tag gets the settled block, e.g. the balance at 'finalized'
        assert rpc.call("eth_getBalance", [rollup_account.address, "finalized"]) == rpc.call(
            "eth_getBalance", [rollup_account.address, hex(fin)])
