"""Unit tests of the node's parts that need no engine: WAL, raw-tx decoding, batch data, finality views."""

from __future__ import annotations

import threading

import pytest
import rlp
from eth_account import Account as EthAccount
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.rollup.compress import BatchData, compress, decompress
from harness.rollup.finality import batch_details, block_details, iso
from harness.rollup.merkle import keccak
from harness.rollup.sequencer import TxRejected, decode_raw
from harness.rollup.store import TxWal

KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")


def signed(**over) -> bytes:
    tx = {"type": 2, "chainId": 270, "nonce": 3, "to": "0x000000000000000000000000000000000000dEaD", "value": 1,
          "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    tx.update(over)
    return bytes(EthAccount.sign_transaction(tx, KEY).raw_transaction)


def test_wal_group_commit_survives_reopen_and_truncates_a_torn_tail(tmp_path) -> None:
    wal = TxWal(tmp_path / "wal.log")
    raws = [signed(nonce=i) for i in range(40)]
    threads = [threading.Thread(target=wal.append, args=(r,)) for r in raws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.tombstone("0x" + keccak(raws[5]).hex())
    assert wal.fsyncs <= 41  # group commit: never more fsyncs than appends
    end = wal.size_bytes
    wal.close()
    with open(tmp_path / "wal.log", "r+b") as fh:  # a crash mid-append leaves half a record at the log's end
        fh.seek(end)
        fh.write(b"\x01\x00\x00\x01\x00\xde\xad")
    again = TxWal(tmp_path / "wal.log")
    assert again.size_bytes == end
    acc = again.accepted()
    assert len(acc) == 39 and "0x" + keccak(raws[5]).hex() not in acc
    assert set(acc.values()) == set(raws) - {raws[5]}
    again.append(signed(nonce=99))  # appends continue after the truncated tail
    again.close()
    assert len(TxWal(tmp_path / "wal.log").accepted()) == 40


def test_wal_leader_gathers_announced_callers_into_one_sync(tmp_path) -> None:
    """Group commit's gathering window: a leader that knows of a caller on its way (announced, not queued)
    waits for it, so one fdatasync covers both; a caller that leaves without queuing releases the leader;
    a lone caller never waits."""
    import time

    wal = TxWal(tmp_path / "wal.log")
    wal.commit_delay_s = 30.0  # long enough that only the announced caller's arrival can end the wait
    wal.append(b"lone")
    assert (wal.fsyncs, wal.delayed_syncs) == (1, 0)

    arrived_b = wal.announce()
    done = threading.Event()
    t = threading.Thread(target=lambda: (wal.append(b"a"), done.set()))
    t.start()
    deadline = time.monotonic() + 10
    while wal.delayed_syncs == 0 and time.monotonic() < deadline:  # A is the leader, waiting for B
        time.sleep(0.001)
    assert wal.delayed_syncs == 1 and not done.is_set()
    item = wal.enqueue(1, [b"b"])
    arrived_b()
    wal.wait(item)
    t.join(10)
    assert done.is_set() and wal.fsyncs == 2  # "a" and "b" in one sync

    arrived_c = wal.announce()  # a caller that leaves without queuing anything
    t = threading.Thread(target=lambda: wal.append(b"d"))
    t.start()
    while wal.delayed_syncs == 1 and time.monotonic() < deadline + 10:
        time.sleep(0.001)
    t0 = time.monotonic()
    arrived_c()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 5 and wal.fsyncs == 3
    wal.close()
    assert [p for _, p in TxWal(tmp_path / "wal.log").records] == [b"lone", b"a", b"b", b"d"]


def test_wal_announcement_handed_to_another_thread_is_adopted_once(tmp_path) -> None:
    """The RPC server announces a body carrying txs on its event loop and hands the announcement to the
    dispatch thread (adopt): that thread's next announce() is the same announcement (counted once), the
    one after it is new, and the server's own arrived() after the request is a no-op."""
    wal = TxWal(tmp_path / "wal.log")
    early = wal.announce()
    assert wal._coming == 1  # noqa: SLF001
    got: list = []

    def dispatch() -> None:
        wal.adopt(early)
        got.append(wal.announce())  # what Sequencer.submit_many does
        got.append(wal.announce())
        wal.adopt(None)

    t = threading.Thread(target=dispatch)
    t.start()
    t.join(10)
    assert got[0] is early and got[1] is not early and wal._coming == 2  # noqa: SLF001
    got[0]()
    got[1]()
    early()  # idempotent
    assert wal._coming == 0  # noqa: SLF001
    assert wal.announce() is not early  # the adoption was for the dispatch thread only
    wal.close()


def test_decode_accepts_typed_and_eip155_legacy() -> None:
    tx = decode_raw(signed(gas=50_000))
    assert (tx.chain_id, tx.nonce, tx.gas) == (270, 3, 50_000)
    assert tx.sender == EthAccount.from_key(KEY).address
    legacy = bytes(EthAccount.sign_transaction({"nonce": 1, "gasPrice": 10**9, "gas": 30_000, "chainId": 270,
                                                "to": "0x000000000000000000000000000000000000dEaD",
                                                "value": 0}, KEY).raw_transaction)
    tx = decode_raw(legacy)
    assert (tx.chain_id, tx.nonce, tx.gas) == (270, 1, 30_000)
    t1 = bytes(EthAccount.sign_transaction({"type": 1, "chainId": 270, "nonce": 2, "gasPrice": 10**9,
                                            "gas": 40_000, "to": "0x000000000000000000000000000000000000dEaD",
                                            "value": 0, "accessList": []}, KEY).raw_transaction)
    assert decode_raw(t1).gas == 40_000


@pytest.mark.parametrize("raw,why", [
    (b"", "empty"), (b"\x05abc", "unknown transaction type"), (b"\x03" + rlp.encode([]), "not supported"),
    (b"\x02" + rlp.encode([b"\x01"] * 3), "field count"), (rlp.encode([b""] * 4), "9 RLP fields"),
    (b"\x02\xff\xff", "malformed"),
])
def test_decode_rejects_garbage(raw: bytes, why: str) -> None:
    with pytest.raises(TxRejected, match=why):
        decode_raw(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decode_never_crashes(raw: bytes) -> None:
    try:
        decode_raw(raw)
    except TxRejected:
        pass


def test_batch_data_roundtrip_all_codecs() -> None:
    bd = BatchData(7, [(10, 1_700_000_000, [signed(nonce=1), signed(nonce=2)]), (11, 1_700_000_001, [])],
                   sorted({keccak(b"a"): keccak(b"1"), keccak(b"b"): b"\x00" * 32}.items()))
    for codec in ("zlib", "lzma", "none"):
        back = BatchData.decode(decompress(compress(bd.encode(), codec)))
        assert back == bd and back.tx_count == 2
    with pytest.raises(ValueError, match="codec"):
        compress(b"x", "brotli")
    with pytest.raises(ValueError):
        decompress(b"\x09abc")


def test_finality_views_follow_zksync_field_names() -> None:
    block = {"number": 5, "hash": "0xab", "timestamp": 100, "tx_hashes": ["0x1"], "gas_used": 21000,
             "gas_limit": 10**8, "seen_at": 100.25, "batch": 2}
    batch = {"number": 2, "first_block": 4, "last_block": 6, "tx_count": 9, "new_root": "0x01", "prev_root": "0x00",
             "data_hash": "0x02", "sealed_at": 101.0, "raw_bytes": 10, "compressed_bytes": 5,
             "compression_ratio": 2.0, "status": "committed", "first_block_timestamp": 99,
             "commit": {"tx_hash": "0xc", "at": 102.5, "block_number": 9, "block_timestamp": 102, "gas_used": 1}}
    op = "0x" + "11" * 20
    d = block_details(block, batch, 3, op)
    assert d["operatorAddress"] == op
    assert d["status"] == "sealed" and d["l1BatchNumber"] == 2 and d["commitTxHash"] == "0xc"
    assert d["committedAt"] == iso(102.5) == "1970-01-01T00:01:42.500000Z" and d["provenAt"] is None
    batch["status"] = "executed"
    assert batch_details(batch)["status"] == "verified"
    # zksync-era never answers null: a block not yet in a batch gets the next batch number
    assert block_details(block, None, 3, op)["l1BatchNumber"] == 3
    genesis = block_details({**block, "number": 0, "batch": None}, None, 3, None)
    assert genesis["l1BatchNumber"] == 0 and genesis["status"] == "verified"
    assert genesis["operatorAddress"] == "0x" + "00" * 20


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=2**32), st.sampled_from([0, 1, 2]), st.integers(min_value=0, max_value=2**20))
def test_sender_recovery_matches_eth_account(seed: int, tx_type: int, nonce: int) -> None:
    """The sequencer's coincurve recovery gives eth-account's sender for legacy EIP-155, 2930 and 1559 txs."""
    key = seed.to_bytes(32, "big")
    base = {"chainId": 270, "nonce": nonce, "to": "0x000000000000000000000000000000000000dEaD", "value": seed,
            "gas": 21_000, "data": b"\x01\x02"}
    if tx_type == 0:
        tx = {**base, "gasPrice": 10**9}
    elif tx_type == 1:
        tx = {**base, "type": 1, "gasPrice": 10**9, "accessList": []}
    else:
        tx = {**base, "type": 2, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    raw = bytes(EthAccount.sign_transaction(tx, key).raw_transaction)
    d = decode_raw(raw)
    assert d.sender == EthAccount.recover_transaction(raw) == EthAccount.from_key(key).address
    assert (d.nonce, d.chain_id, d.gas) == (nonce, 270, 21_000)
