"""L1 outage: the batcher retries with backoff while L1 is unreachable and catches up afterwards.

The node talks to L1 through a TCP relay (fixtures/rollup.py ``l1_relay``: a real socket relay, no mock)
that the test cuts: while cut, every connection is closed at once, so commit/prove/execute calls fail.
"""

from __future__ import annotations

import time

import pytest

from fixtures.rollup import l1_operator_key
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account
from harness.chain.rpc import rpc_call
from harness.rollup.l1 import RollupL1

from ._l2tx import raw_transfer

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _send_transfers(url: str, key: bytes, start_nonce: int, n: int) -> list[str]:
    hashes = []
    for i in range(n):
        hashes.append(rpc_call(url, "eth_sendRawTransaction", [raw_transfer(key, start_nonce + i)]))
    return hashes


def test_batcher_retries_through_an_l1_outage_and_catches_up(private_l1, l1_relay, rollup_node_factory) -> None:
    relay = l1_relay
    node = rollup_node_factory(relay.url, l1_operator_key(), None, ("--max-blocks", "1", "--max-seconds", "1"))
    key = derive_account(DEFAULT_MNEMONIC, 12).key
    _send_transfers(node.url, key, 0, 5)
    relay.cut()
    t_cut = time.monotonic()
    during = _send_transfers(node.url, key, 5, 20)  # L2 keeps accepting and sealing during the outage
    time.sleep(6.0)
    st = rpc_call(node.url, "rollup_status")
    stuck = st["batches"]
    assert st["errors"], "no L1 error recorded while L1 was unreachable"
    assert stuck["sealed"] > stuck["executed"], stuck
    relay.restore()
    rc = rpc_call(node.url, "eth_getTransactionReceipt", [during[-1]])
    last_block = int(rc["blockNumber"], 16)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        d = rpc_call(node.url, "zks_getBlockDetails", [last_block])
        if d and d["status"] == "verified":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no catch-up: {rpc_call(node.url, 'rollup_status')}")
    st = rpc_call(node.url, "rollup_status")
    print(f"\noutage {6.0:.0f} s (+ {time.monotonic() - t_cut - 6.0:.1f} s to catch up); "
          f"batches before restore {stuck}; after {st['batches']}; relay refused {relay.refused} connections")
    assert st["halted"] is None
    totals = RollupL1.attach(private_l1.url, st["rollupAddress"]).totals()
    assert totals["executed"] >= d["l1BatchNumber"] and st["l1Totals"] == totals
    for n in range(1, totals["executed"] + 1):  # steps that went through during the outage carry real records
        b = rpc_call(node.url, "zks_getL1BatchDetails", [n])
        for step in ("commit", "prove", "execute"):
            assert b[f"{step}TxHash"] and b[f"{step}GasUsed"], (n, step, b)
