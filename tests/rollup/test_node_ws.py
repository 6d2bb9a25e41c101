"""The node over WebSocket, with real clients: web3.py's ``WebSocketProvider`` (every HTTP method, plus
``eth_subscribe`` newHeads and logs) and Foundry's ``cast`` with a ``ws://`` RPC URL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
from eth_account import Account as EthAccount
from web3 import AsyncWeb3, Web3, WebSocketProvider

from harness.chain.anvil import CAST_BIN
from harness.chain.rpc import rpc_call
from harness.chain.uniswap import SWAP_AMOUNT_IN, swap_calldata

pytestmark = [pytest.mark.chain, pytest.mark.slow]
HEADS_TO_SEE = 6
SWAP_TOPIC = "0x" + Web3.keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)").hex().removeprefix("0x")


def ws_url(http_url: str) -> str:
    return "ws://" + http_url.removeprefix("http://")


async def _heads_and_swap_logs(url: str, key: bytes, dep) -> tuple[list[dict], list[dict], dict]:
    async with AsyncWeb3(WebSocketProvider(url)) as w3:
        assert await w3.eth.chain_id == 270
        heads_sub = await w3.eth.subscribe("newHeads")
        logs_sub = await w3.eth.subscribe("logs", {"topics": [SWAP_TOPIC]})
        acct = EthAccount.from_key(key)
        block = await w3.eth.get_block("latest")
        tx = {"chainId": 270, "nonce": await w3.eth.get_transaction_count(acct.address, "pending"), "type": 2,
              "maxFeePerGas": 2 * block["baseFeePerGas"] + 10**9, "maxPriorityFeePerGas": 10**9,
              "to": dep.router, "value": 0, "gas": 200_000,
              "data": swap_calldata(SWAP_AMOUNT_IN, [dep.token_a, dep.token_b], acct.address)}
        tx_hash = await w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
        heads: list[dict] = []
        logs: list[dict] = []
        receipt: dict = {}

        async def collect() -> None:
            async for msg in w3.socket.process_subscriptions():
                if msg["subscription"] == heads_sub:
                    heads.append(dict(msg["result"]))
                elif msg["subscription"] == logs_sub:
                    logs.append(dict(msg["result"]))
                if len(heads) >= HEADS_TO_SEE and logs:
                    return

        await asyncio.wait_for(collect(), timeout=60)
        receipt = dict(await w3.eth.get_transaction_receipt(tx_hash))
        assert await w3.eth.unsubscribe(heads_sub) is True
        assert await w3.eth.unsubscribe(logs_sub) is True
        return heads, logs, receipt


def test_web3_websocket_new_heads_every_block_and_swap_logs(rollup_env, rollup_account) -> None:
    """newHeads delivers every L2 block in order (no gap, hashes as the node serves them over HTTP); a swap
    sent over the WebSocket is included and its Swap event arrives on the logs subscription."""
    heads, logs, receipt = asyncio.run(_heads_and_swap_logs(ws_url(rollup_env.url), rollup_account.key,
                                                            rollup_env.uniswap))
    numbers = [int(h["number"]) for h in heads]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    for h in heads[:3]:
        blk = rpc_call(rollup_env.url, "eth_getBlockByNumber", [hex(int(h["number"])), False])
        assert blk["hash"] == "0x" + bytes(h["hash"]).hex().removeprefix("0x")
    assert receipt["status"] == 1
    swap_logs = [lg for lg in logs if ("0x" + bytes(lg["transactionHash"]).hex().removeprefix("0x"))
                 == "0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x")]
    assert swap_logs, (logs, receipt)
    assert int(swap_logs[0]["blockNumber"]) == receipt["blockNumber"]


def _cast(*args: str) -> str:
    out = subprocess.run([str(CAST_BIN), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_cast_over_websocket(rollup_env, rollup_account) -> None:
    """Foundry's cast reads and sends over ws:// (its own WebSocket client)."""
    if not CAST_BIN.is_file():
        pytest.fail(f"cast not found at {CAST_BIN}: run npm ci")
    url = ws_url(rollup_env.url)
    assert int(_cast("chain-id", "--rpc-url", url)) == 270
    head = int(_cast("block-number", "--rpc-url", url))
    assert head >= 1
    key = "0x" + rollup_account.key.hex().removeprefix("0x")
    rcpt = json.loads(_cast("send", "--private-key", key, "--rpc-url", url,
                            "0x000000000000000000000000000000000000bEEF", "--value", "7", "--json"))
    assert int(rcpt["status"], 16) == 1, rcpt
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and int(_cast("block-number", "--rpc-url", url)) <= head:
        time.sleep(0.3)
    assert int(_cast("block-number", "--rpc-url", url)) > head
