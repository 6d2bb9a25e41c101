"""End to end on the shared node: real clients' txs reach hard finality (executed on L1).

Clients: web3.py (a transfer and a Uniswap V2 swap) and Foundry's ``cast send`` (an independent
implementation that does its own nonce/fee/gas estimation through the node's eth_* proxy).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from eth_account import Account as EthAccount
from web3 import Web3

from harness.chain.anvil import CAST_BIN
from harness.chain.rpc import rpc_call
from harness.chain.uniswap import SWAP_AMOUNT_IN, swap_calldata

pytestmark = [pytest.mark.chain, pytest.mark.slow]
HARD_FINALITY_TIMEOUT_S = 180.0


def wait_verified(url: str, block_number: int, timeout_s: float = HARD_FINALITY_TIMEOUT_S) -> dict:
    """Poll zks_getBlockDetails until the block's batch is executed on L1 (status 'verified')."""
    deadline = time.monotonic() + timeout_s
    d = None
    while time.monotonic() < deadline:
        d = rpc_call(url, "zks_getBlockDetails", [block_number])
        if d and d["status"] == "verified":
            return d
        time.sleep(0.5)
    status = rpc_call(url, "rollup_status")
    raise AssertionError(f"block {block_number} not executed on L1 after {timeout_s} s: {d}\nnode: {status}")


def check_finality_order(d: dict, receipt_block_ts: int) -> None:
    assert d["commitTxHash"] and d["proveTxHash"] and d["executeTxHash"]
    assert d["softFinalityAtUnix"] <= d["committedAtUnix"] <= d["provenAtUnix"] <= d["executedAtUnix"]
    assert d["committedAt"].endswith("Z") and d["executedAt"].endswith("Z")
    assert d["timestamp"] == receipt_block_ts
    assert d["commitGasUsed"] > 0 and d["proveGasUsed"] > 0 and d["executeGasUsed"] > 0


def _send(w3: Web3, key: bytes, tx: dict) -> dict:
    acct = EthAccount.from_key(key)
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(acct.address, "pending"),
          "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
          "maxPriorityFeePerGas": 10**9, "type": 2, **tx}
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.2)


def test_web3_transfer_and_swap_reach_executed(rollup_env, rollup_account) -> None:
    w3 = Web3(Web3.HTTPProvider(rollup_env.url))
    assert w3.eth.chain_id == 270
    r1 = _send(w3, rollup_account.key, {"to": "0x000000000000000000000000000000000000dEaD", "value": 1, "gas": 21_000})
    dep = rollup_env.uniswap
    data = swap_calldata(SWAP_AMOUNT_IN, [dep.token_a, dep.token_b], rollup_account.address)
    r2 = _send(w3, rollup_account.key, {"to": dep.router, "data": data, "value": 0, "gas": 200_000})
    assert r1["status"] == 1 and r2["status"] == 1, (r1, r2)
    for r in (r1, r2):
        d = wait_verified(rollup_env.url, r["blockNumber"])
        check_finality_order(d, w3.eth.get_block(r["blockNumber"])["timestamp"])
        batch = rpc_call(rollup_env.url, "zks_getL1BatchDetails", [d["l1BatchNumber"]])
        assert batch["firstBlock"] <= r["blockNumber"] <= batch["lastBlock"]
        timings = rpc_call(rollup_env.url, "rollup_batchTimings", [d["l1BatchNumber"]])["timings_s"]
        assert set(timings) >= {"seal", "state_diff", "tree", "compress", "commit", "reexecute", "prove",
                                "verify", "execute"}


def _cast(*args: str) -> dict:
    out = subprocess.run([str(CAST_BIN), *args, "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cast_send_reaches_executed(rollup_env, rollup_account) -> None:
    """Foundry's cast (its own nonce/fee/gas logic) sends a transfer and a Uniswap V2 swap."""
    if not CAST_BIN.is_file():
        pytest.fail(f"cast not found at {CAST_BIN}: run npm ci")
    w3 = Web3(Web3.HTTPProvider(rollup_env.url))
    key = "0x" + rollup_account.key.hex().removeprefix("0x")
    common = ("--private-key", key, "--rpc-url", rollup_env.url)
    transfer = _cast("send", *common, "0x000000000000000000000000000000000000bEEF", "--value", "12345")
    dep = rollup_env.uniswap
    deadline = str(int(time.time()) + 3600)
    swap = _cast(
        "send", *common, dep.router,
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
        str(SWAP_AMOUNT_IN), "0", f"[{dep.token_a},{dep.token_b}]", rollup_account.address, deadline,
    )
    for rcpt in (transfer, swap):
        assert int(rcpt["status"], 16) == 1, rcpt
        n = int(rcpt["blockNumber"], 16)
        d = wait_verified(rollup_env.url, n)
        check_finality_order(d, w3.eth.get_block(n)["timestamp"])
    assert w3.eth.get_balance("0x000000000000000000000000000000000000bEEF") >= 12345
    # the swap moved tokens through the pair: its receipt carries the pair's Swap event
    swap_topic = Web3.keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)").hex()
    topics = [lg["topics"][0].lower().removeprefix("0x") for lg in swap["logs"]]
    assert swap_topic.lower().removeprefix("0x") in topics
