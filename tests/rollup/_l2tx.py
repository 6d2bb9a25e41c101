"""Shared by the node tests: a signed L2 transfer (chain 270, EIP-1559) and a wait that explains itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from eth_account import Account as EthAccount

from harness.chain.rpc import rpc_call

L2_CHAIN_ID = 270
SINK = "0x000000000000000000000000000000000000dEaD"
T = TypeVar("T")


def signed_transfer(key: bytes, nonce: int, value: int = 1) -> Any:
    """A signed 21,000-gas transfer of ``value`` wei to a sink address (eth-account's SignedTransaction)."""
    tx = {"type": 2, "chainId": L2_CHAIN_ID, "nonce": nonce, "gas": 21_000, "value": value, "to": SINK,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    return EthAccount.sign_transaction(tx, key)


def raw_transfer(key: bytes, nonce: int, value: int = 1) -> str:
    """:func:`signed_transfer`'s raw bytes as 0x-hex, for ``eth_sendRawTransaction``."""
    return signed_transfer(key, nonce, value).raw_transaction.to_0x_hex()


def wait_for(pred: Callable[[], T], timeout_s: float, what: str, url: str, poll_s: float = 0.25) -> T:
    """``pred()``'s first truthy value; after ``timeout_s`` an AssertionError with the node's rollup_status."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(poll_s)
    raise AssertionError(f"{what} within {timeout_s} s: {rpc_call(url, 'rollup_status')}")
