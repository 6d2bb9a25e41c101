"""The prover takes a batch from L1, not from the node's local copy.

Node level: while the node's L1 connection is cut (a real TCP relay, fixtures/rollup.py), the node seals
batch 1 locally; the test then commits batch 1 on L1 itself, with the sequencer key, the same roots and a
DIFFERENT published state diff. When L1 comes back, the node finds batch 1 already committed (and rebuilds
its commit record from L1), and the prover - reading the commit transaction's calldata from L1 and
re-executing it - refuses: the node halts, L1 never gets a proof, the node's local copy is untouched. The
refusal survives a restart.

L1 level: ``RollupL1.published_batch`` returns exactly the committed calldata / blob payload and refuses
data that does not match what the contract stored.
"""

from __future__ import annotations

import time

import pytest
from eth_account import Account as EthAccount

from fixtures.rollup import l1_operator_key
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account
from harness.chain.rpc import rpc_call
from harness.rollup.compress import BatchData, compress, decompress
from harness.rollup.l1 import BatchNotCommitted, PublishedDataError, RollupL1
from harness.rollup.merkle import keccak

from ._l2tx import raw_transfer
from ._l2tx import wait_for as _wait

pytestmark = [pytest.mark.chain, pytest.mark.slow]
NODE_ARGS = ("--max-blocks", "1", "--max-seconds", "1")


def test_prover_refuses_when_l1_data_differs_from_the_local_copy(private_l1, l1_relay, rollup_node_factory,
                                                                 tmp_path) -> None:
    data_dir = tmp_path / "node"
    node = rollup_node_factory(l1_relay.url, l1_operator_key(), data_dir, NODE_ARGS)
    address = rpc_call(node.url, "rollup_status")["rollupAddress"]
    l1_relay.cut()
    rpc_call(node.url, "eth_sendRawTransaction", [raw_transfer(derive_account(DEFAULT_MNEMONIC, 12).key, 0)])
    rec = _wait(lambda: rpc_call(node.url, "rollup_batch", [1]), 30, "batch 1 not sealed", node.url)
    assert rec["status"] == "sealed" and rec["tx_count"] == 1
    local = (data_dir / "batches" / "1.bin").read_bytes()
    assert "0x" + keccak(local).hex() == rec["data_hash"]
    bd = BatchData.decode(decompress(local))
    k, v = bd.diff[0]
    bd.diff[0] = (k, keccak(v))  # a state diff the batch's txs do not produce
    forged = compress(bd.encode())
    l1 = RollupL1.attach(private_l1.url, address)
    l1.commit_batch(l1_operator_key(), 1, bytes.fromhex(rec["prev_root"][2:]), bytes.fromhex(rec["new_root"][2:]),
                    forged)
    l1_relay.restore()

    st = _wait(lambda: (s := rpc_call(node.url, "rollup_status"))["halted"] and s, 90, "node did not halt", node.url)
    assert "published on L1" in st["halted"] and "batch 1" in st["halted"], st["halted"]
    d = rpc_call(node.url, "zks_getL1BatchDetails", [1])
    assert d["nodeStatus"] == "refused" and "published on L1" in d["refusal"]
    # the commit record was rebuilt from L1 (the test's own commit tx), with its real gas
    assert d["commitRecovered"] is True and d["commitGasUsed"] > 0 and d["proveTxHash"] is None
    assert (data_dir / "batches" / "1.bin").read_bytes() == local, "the local copy was modified"
    assert l1.totals()["proven"] == 0 and not l1.batch(1)["proven"]
    assert l1.published_batch(1).data == forged

    node.stop()  # the refusal is persisted: a restarted node stays halted and proves nothing
    node2 = rollup_node_factory(l1_relay.url, l1_operator_key(), data_dir, NODE_ARGS)
    st2 = rpc_call(node2.url, "rollup_status")
    assert st2["halted"] and "refused" in st2["halted"], st2
    time.sleep(3)
    assert l1.totals()["proven"] == 0


@pytest.fixture
def rollup(private_l1) -> RollupL1:
    key = l1_operator_key()
    return RollupL1.deploy(private_l1.url, key, EthAccount.from_key(key).address, b"\x11" * 32)


def test_published_batch_reads_calldata_and_blobs_back_from_l1(rollup: RollupL1) -> None:
    key = l1_operator_key()
    data1 = bytes(range(256)) * 30
    rollup.commit_batch(key, 1, b"\x11" * 32, b"\x22" * 32, data1)
    pub = rollup.published_batch(1)
    assert pub.data == data1 and pub.source == "calldata" and pub.new_root == b"\x22" * 32
    data2 = bytes(reversed(range(256))) * 700  # > one blob of payload
    res = rollup.commit_batch_blobs(key, 2, b"\x22" * 32, b"\x33" * 32, data2)
    pub2 = rollup.published_batch(2)
    assert pub2.data == data2 and pub2.source.startswith("blobs (read back from L1")
    assert pub2.blob_versioned_hashes == res.blob_versioned_hashes and len(res.blob_versioned_hashes) == 2
    assert pub2.commit_tx_hash == res.tx_hash
    # step records rebuilt from L1 alone equal what the sender saw
    again = rollup.step_tx(2, "commit")
    assert (again.tx_hash, again.gas_used, again.blob_gas_used) == (res.tx_hash, res.gas_used, res.blob_gas_used)
    assert again.blob_gas_used == 2 * 131_072 and rollup.step_tx(2, "prove") is None
    # not committed (yet, or any more after a reorg) is a state question the prover retries, not a mismatch
    with pytest.raises(BatchNotCommitted, match="not committed") as ei:
        rollup.published_batch(3)
    assert not isinstance(ei.value, PublishedDataError)
