"""The client-side finality tracker (harness/chain/finality.py) against real anvils (tags mode).

anvil with ``--slots-in-an-epoch N`` reports ``safe`` = latest − N and ``finalized`` = latest − 2N, so
with 1 s blocks a tx's block becomes safe ≈ N s and finalized ≈ 2N s after inclusion.
"""

from __future__ import annotations

import threading
import time

import pytest

from harness import procs
from harness.chain import uniswap
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account
from harness.chain.anvil import Anvil
from harness.chain.finality import (
    FinalityError,
    FinalityTimeout,
    FinalityTracker,
    NodeUnreachable,
    TxFinality,
    parse_time,
)
from harness.chain.rpc import Rpc, to_int

pytestmark = pytest.mark.chain
EPOCH = 2


# -- pure parts ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (1700000000.25, 1700000000.25),
        (1700000000, 1700000000.0),
        ("2023-11-14T22:13:20Z", 1700000000.0),
        ("2023-11-14T22:13:20.5Z", 1700000000.5),
        ("2023-11-14T22:13:20.123456789Z", 1700000000.123456),  # ns truncated to µs
        ("2023-11-14T23:13:20.250000+01:00", 1700000000.25),
        ("2023-11-14T22:13:20.75", 1700000000.75),  # naive -> UTC
    ],
)
def test_parse_time(value, expected) -> None:
    got = parse_time(value)
    assert got == pytest.approx(expected, abs=1e-6) if expected is not None else got is None


@pytest.mark.parametrize("bad", ["yesterday", "2023-13-40T00:00:00Z", True, [1]])
def test_parse_time_rejects_junk(bad) -> None:
    with pytest.raises(FinalityError):
        parse_time(bad)


def test_order_violations_name_the_pair() -> None:
    ok = TxFinality("0xa", 1, 1.0, 1.5, 1, committed_s=3.0, proven_s=4.0, executed_s=5.0)
    assert ok.order_violations() == [] and ok.hard_s == 5.0
    bad = TxFinality("0xb", 1, 1.0, 3.5, 1, committed_s=3.0, proven_s=None, executed_s=5.0)
    v = bad.order_violations()
    assert any(s.startswith("soft 3.500 >= committed") for s in v) and any("missing" in s for s in v)
    tags = TxFinality("0xc", 1, 1.0, 1.5, None, safe_s=3.0, finalized_s=5.0)
    assert [s for s, _ in tags.chain()] == ["submit", "soft", "safe", "finalized"] and tags.hard_s == 5.0
    # one poll saw both tags pass the block: a tie at poll resolution, not disorder; the reverse still is
    assert TxFinality("0xd", 1, 1.0, 1.5, None, safe_s=3.0, finalized_s=3.0).order_violations() == []
    assert TxFinality("0xe", 1, 1.0, 1.5, None, safe_s=3.0, finalized_s=2.9).order_violations() == [
        "safe 3.000 > finalized 2.900"]
    assert TxFinality("0xf", 1, 1.0, 3.0, None, safe_s=3.0, finalized_s=4.0).order_violations() == [
        "soft 3.000 >= safe 3.000"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        FinalityTracker("http://127.0.0.1:1", mode="optimistic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"http\(s\):// or ws\(s\)://"):  # ws:// is a transport since the WS client
        FinalityTracker("ftp://127.0.0.1:1")


# -- against real anvils ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def epoch_anvil(tmp_path_factory):
    node = Anvil(block_time=1, slots_in_an_epoch=EPOCH, log_dir=tmp_path_factory.mktemp("anvil-epoch"))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _send_transfer(url: str) -> tuple[str, float]:
    sender = derive_account(DEFAULT_MNEMONIC, 3)
    with Rpc(url) as rpc:
        fees = uniswap.fee_params(rpc)
        nonce = to_int(rpc.call("eth_getTransactionCount", [sender.address, "pending"]))
        raw, h = sender.sign({"type": 2, "chainId": uniswap.chain_id(rpc), "nonce": nonce, "to": sender.address,
                              "value": 1, "gas": 21_000, "data": "0x", **fees.fields()})
        submit = time.time()
        rpc.call("eth_sendRawTransaction", [raw])
    return h, submit


def test_auto_detects_tags_on_anvil_and_tracks_safe_then_finalized(epoch_anvil) -> None:
    h, submit = _send_transfer(epoch_anvil.url)
    with FinalityTracker(epoch_anvil.url, mode="auto", poll_s=0.05) as tr:
        assert tr.mode == "tags" and tr.hard_stage == "finalized"
        [rec] = tr.track_txs([(h, submit)], timeout_s=30)
    assert rec.order_violations() == [], rec
    assert rec.committed_s is None and rec.executed_s is None
    # safe = latest - N with 1 s blocks: N s after inclusion (±1 block + poll), finalized N s later
    assert EPOCH - 1.2 <= rec.safe_s - rec.soft_s <= EPOCH + 1.5, rec
    assert EPOCH - 1.2 <= rec.finalized_s - rec.safe_s <= EPOCH + 1.5, rec
    assert rec.soft_s - rec.submit_s < 1.5


def test_explicit_zks_mode_on_a_plain_node_is_a_clear_error(epoch_anvil) -> None:
    with FinalityTracker(epoch_anvil.url, mode="zks") as tr, pytest.raises(FinalityError, match="zks_getBlockDetails"):
        _ = tr.mode


def test_timeout_carries_partial_records(epoch_anvil) -> None:
    with FinalityTracker(epoch_anvil.url, mode="tags", poll_s=0.05) as tr:
        head = to_int(tr.rpc.call("eth_blockNumber"))
        with pytest.raises(FinalityTimeout, match="did not reach 'finalized'") as ei:
            tr.wait_blocks([head - 1 if head > 0 else 0, head + 1000], timeout_s=0.5)
    assert set(ei.value.partial) >= {head + 1000}
    assert not ei.value.partial[head + 1000].reached("safe")


def test_dead_url_is_a_clear_error_fast() -> None:
    url = f"http://127.0.0.1:{procs.free_port()}"
    t0 = time.monotonic()
    with FinalityTracker(url) as tr, pytest.raises(NodeUnreachable, match="not reachable"):
        _ = tr.mode
    assert time.monotonic() - t0 < 5


def test_node_dying_while_tracked_raises_unreachable(tmp_path) -> None:
    node = Anvil(block_time=1, slots_in_an_epoch=EPOCH, log_dir=tmp_path).start()
    try:
        with FinalityTracker(node.url, mode="tags", poll_s=0.05, unreachable_after_s=1.0) as tr:
            head = to_int(tr.rpc.call("eth_blockNumber"))
            killer = threading.Timer(0.5, node.stop)
            killer.start()
            t0 = time.monotonic()
            with pytest.raises(NodeUnreachable, match=node.url):
                tr.wait_blocks([head + 500], timeout_s=60)
            assert time.monotonic() - t0 < 10
            killer.join()
    finally:
        node.stop()
