"""EIP-4844 data availability: with ``--da blobs`` the node commits batch data in blob transactions.

The L1 stores keccak(versioned hashes) as the batch's dataHash; the node computes the same value at
seal time (local KZG commitments), proves against it, and the batch reaches executed like a calldata one.
"""

from __future__ import annotations

import time

import pytest
from eth_account import Account as EthAccount
from web3 import Web3

from fixtures.rollup import l1_operator_key
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account
from harness.chain.rpc import rpc_call
from harness.rollup.blobs import blob_data_hash, blob_versioned_hashes, encode_blobs
from harness.rollup.config import BatchCriteria, NodeConfig
from harness.rollup.l1 import RollupL1

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def test_blob_versioned_hashes_match_what_l1_records(private_l1) -> None:
    """The locally computed versioned hashes are the ones the L1 transaction carries."""
    key = l1_operator_key()
    l1 = RollupL1.deploy(private_l1.url, key, EthAccount.from_key(key).address, b"\x11" * 32)
    data = bytes(range(256)) * 40
    res = l1.commit_batch_blobs(key, 1, b"\x11" * 32, b"\x22" * 32, data)
    local = blob_versioned_hashes(encode_blobs(data))
    assert list(res.blob_versioned_hashes) == local
    assert l1.batch(1)["data_hash"] in (blob_data_hash(local), "0x" + blob_data_hash(local).hex())


def test_blob_config_refuses_batches_that_cannot_fit() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        NodeConfig(data_dir="/tmp/x", data_availability="blobs", criteria=BatchCriteria(max_bytes=10**7))
    with pytest.raises(ValueError, match="data_availability"):
        NodeConfig(data_dir="/tmp/x", data_availability="ipfs")


def test_node_with_blob_da_reaches_executed(private_l1, rollup_node_factory) -> None:
    node = rollup_node_factory(private_l1.url, l1_operator_key(), None,
                               ("--da", "blobs", "--max-blocks", "1", "--max-seconds", "1"))
    # the KZG trusted setup (its loader holds the GIL for seconds) was loaded before the node served,
    # so sealing the first blob batch does not freeze the RPC calls below (each has a 5 s timeout)
    assert rpc_call(node.url, "rollup_status")["recovery"]["kzg_trusted_setup_load_s"] > 0
    w3 = Web3(Web3.HTTPProvider(node.url))
    sender = derive_account(DEFAULT_MNEMONIC, 1)
    tx = {"chainId": w3.eth.chain_id, "nonce": 0, "to": "0x000000000000000000000000000000000000dEaD",
          "value": 1, "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "type": 2}
    h = w3.eth.send_raw_transaction(EthAccount.from_key(sender.key).sign_transaction(tx).raw_transaction)
    rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.2)
    deadline = time.monotonic() + 180
    d = None
    while time.monotonic() < deadline:
        d = rpc_call(node.url, "zks_getBlockDetails", [rcpt["blockNumber"]])
        if d and d["status"] == "verified":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"not executed: {d}\n{rpc_call(node.url, 'rollup_status')}")
    l1w3 = Web3(Web3.HTTPProvider(private_l1.url))
    commit_tx = l1w3.eth.get_transaction(d["commitTxHash"])
    assert commit_tx["type"] == 3 and commit_tx["blobVersionedHashes"], commit_tx
    assert l1w3.eth.get_transaction_receipt(d["commitTxHash"])["blobGasUsed"] > 0
    # the prover re-executed the blobs it read back from L1, and the blob gas is on the record
    b = rpc_call(node.url, "zks_getL1BatchDetails", [d["l1BatchNumber"]])
    assert b["publishedDataSource"].startswith("blobs (read back from L1"), b
    assert b["dataAvailability"] == "blobs" and b["commitBlobGasUsed"] == 131_072 * len(commit_tx["blobVersionedHashes"])
    assert rpc_call(node.url, "rollup_batchTimings", [d["l1BatchNumber"]])["l1_blob_gas"]["commit"] > 0
