"""The batch state diff is the real end state: checked against eth_getBalance/getStorageAt, and against geth's
prestateTracer (diffMode), on a block of Uniswap V2 swaps and transfers."""

from __future__ import annotations

import pytest

from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account, derive_accounts
from harness.chain.uniswap import SWAP_AMOUNT_IN, deploy_uniswap, fund_and_approve, swap_calldata
from harness.rollup.engine import Engine, EngineConfig
from harness.rollup.merkle import KIND_BALANCE, KIND_NONCE, KIND_STORAGE, state_key
from harness.rollup.state_diff import TRACER, blocks_state_diff, fold_tx_diff

pytestmark = [pytest.mark.chain]


def test_state_diff_matches_chain_state_and_prestate_tracer(tmp_path) -> None:
    # HTTP, explicitly: the Uniswap deployment tools speak HTTP JSON-RPC (the node's engines use IPC)
    eng = Engine(EngineConfig(transport="http"), tmp_path / "logs", "diff-test").start()
    try:
        eng.start_interval_mining(1)
        deployer = derive_account(DEFAULT_MNEMONIC, 0)
        dep = deploy_uniswap(eng.anvil.url, deployer)
        users = derive_accounts(DEFAULT_MNEMONIC, 1000, 4)
        fund_and_approve(eng.anvil.url, dep, deployer, users)
        eng.rpc.call("evm_setIntervalMining", [0])
        raws = []
        for i, u in enumerate(users):
            nonce = int(eng.rpc.call("eth_getTransactionCount", [u.address, "pending"]), 16)
            path = [dep.token_a, dep.token_b] if i % 2 == 0 else [dep.token_b, dep.token_a]
            for k in range(3):
                raw, _ = u.sign({"type": 2, "chainId": 270, "nonce": nonce + k, "to": dep.router, "value": 0,
                                 "gas": 200_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
                                 "data": swap_calldata(SWAP_AMOUNT_IN, path, u.address)})
                raws.append(raw)
            raw, _ = u.sign({"type": 2, "chainId": 270, "nonce": nonce + 3, "to": users[0].address, "value": 7,
                             "gas": 21_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9})
            raws.append(raw)
        for r in raws:
            eng.rpc.call("eth_sendRawTransaction", [r])
        eng.rpc.call("evm_mine", [])
        n = int(eng.rpc.call("eth_blockNumber"), 16)
        blk = eng.rpc.call("eth_getBlockByNumber", [hex(n), False])
        assert len(blk["transactions"]) == len(raws)
        for h in blk["transactions"]:
            assert eng.rpc.call("eth_getTransactionReceipt", [h])["status"] == "0x1"

        diff, ntx = blocks_state_diff(eng.rpc, n, n)
        assert ntx == len(raws)
        # 1) against geth-style prestate diffs
        pre: dict[bytes, bytes] = {}
        for t in eng.rpc.call("debug_traceBlockByNumber", [hex(n), TRACER]):
            fold_tx_diff(t["result"], pre)
        assert diff == pre
        # 2) against the chain's own state at the block
        checked = 0
        for t in eng.rpc.call("trace_replayBlockTransactions", [hex(n), ["stateDiff"]]):
            for addr, acc in t["stateDiff"].items():
                if acc["balance"] != "=":
                    v = int(eng.rpc.call("eth_getBalance", [addr, hex(n)]), 16)
                    assert diff[state_key(addr, KIND_BALANCE)] == v.to_bytes(32, "big")
                    checked += 1
                if acc["nonce"] != "=":
                    v = int(eng.rpc.call("eth_getTransactionCount", [addr, hex(n)]), 16)
                    assert diff[state_key(addr, KIND_NONCE)] == v.to_bytes(32, "big")
                for slot in acc.get("storage") or {}:
                    v = int(eng.rpc.call("eth_getStorageAt", [addr, slot, hex(n)]), 16)
                    assert diff[state_key(addr, KIND_STORAGE, int(slot, 16).to_bytes(32, "big"))] == \
                        v.to_bytes(32, "big")
                    checked += 1
        assert checked > 20
    finally:
        eng.stop()


def test_block_diffs_traced_ahead_merge_to_the_range_diff(tmp_path) -> None:
    """The seal's merge of per-block diffs (traced as blocks are recorded, diff_tracer.py) equals tracing the
    whole range at once, including when some blocks were not traced ahead and the seal traces them."""
    import threading

    from harness.rollup.diff_tracer import STALE_S, BlockDiffTracer

    eng = Engine(EngineConfig(), tmp_path / "logs", "diff-ahead").start()
    try:
        users = derive_accounts(DEFAULT_MNEMONIC, 0, 3)
        first = int(eng.rpc.call("eth_blockNumber"), 16) + 1
        for k in range(6):  # six blocks; the same accounts written in several of them (a later write wins)
            for i, u in enumerate(users):
                raw, _ = u.sign({"type": 2, "chainId": 270, "nonce": k, "to": users[(i + 1) % 3].address,
                                 "value": 1 + k * 3 + i, "gas": 21_000, "maxFeePerGas": 10**11,
                                 "maxPriorityFeePerGas": 10**9})
                eng.rpc.call("eth_sendRawTransaction", [raw])
            eng.rpc.call("evm_mine", [])
        last = first + 5
        whole, ntx = blocks_state_diff(eng.rpc, first, last)
        assert ntx == 18
        head = {"n": first + 2}  # the tracer sees only the first three blocks recorded
        tracer = BlockDiffTracer(eng.rpc, lambda: head["n"], first)
        stop = threading.Event()
        t = threading.Thread(target=tracer.run, args=(stop,), daemon=True)
        t.start()
        try:
            for _ in range(200):
                if len(tracer._diffs) == 3:
                    break
                stop.wait(0.05)
            assert sorted(tracer._diffs) == [first, first + 1, first + 2]
            recorded = [{"number": first + k, "seen_at": 1000.0 + k} for k in range(6)]
            # a batch may close only over traced blocks, unless the first untraced one is stale
            assert [b["number"] for b in tracer.ready(recorded, now=1004.0)] == [first, first + 1, first + 2]
            assert tracer.ready(recorded, now=1003.0 + STALE_S + 1) == recorded
            diff, info = tracer.take(first, last, eng.rpc)
        finally:
            stop.set()
            t.join(5)
        assert diff == whole
        assert info["traced_ahead"] == 3 and info["traced_at_seal"] == 3
        assert not tracer._diffs  # taken blocks are forgotten
    finally:
        eng.stop()
