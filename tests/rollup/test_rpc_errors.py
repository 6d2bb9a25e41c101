"""The node's JSON-RPC surface: malformed requests and transactions get proper errors; the node stays up.

The hypothesis tests take their example counts from the active profile (fixtures/hypothesis_profiles.py:
``ci`` / ``dev``), and each checks at its end that the node is still alive and not halted.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest
import rlp
from eth_account import Account as EthAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.chain.rpc import rpc_call

pytestmark = [pytest.mark.chain]

# no max_examples here: the ci/dev profiles decide how many examples run
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def post(url: str, body: bytes) -> tuple[int, object]:
    """(HTTP status, decoded JSON reply or None for an empty body)."""
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.request("POST", "/", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def call(url: str, method: str, params) -> dict:
    return post(url, json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode())[1]


def alive(url: str) -> None:
    assert int(rpc_call(url, "eth_blockNumber"), 16) >= 0
    assert rpc_call(url, "rollup_status")["halted"] is None


def test_protocol_errors(rollup_env) -> None:
    url = rollup_env.url
    assert post(url, b"{not json")[1]["error"]["code"] == -32700
    assert post(url, b"[]")[1]["error"]["code"] == -32600
    assert post(url, b"42")[1]["error"]["code"] == -32600
    assert call(url, "no_such_method", [])["error"]["code"] == -32601
    assert call(url, "zks_getBlockDetails", ["zz"])["error"]["code"] == -32602
    assert call(url, "zks_getBlockDetails", [])["error"]["code"] == -32602
    assert call(url, "eth_blockNumber", "notalist")["error"]["code"] == -32602
    assert call(url, "eth_sendRawTransaction", [])["error"]["code"] == -32602
    assert call(url, "eth_sendRawTransaction", ["0xzz"])["error"]["code"] == -32602
    assert call(url, "eth_sendTransaction", [{}])["error"]["code"] == -32000
    assert call(url, "zks_getBlockDetails", [10**9])["result"] is None
    batch = post(url, json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                                  {"jsonrpc": "2.0", "id": 2, "method": "nope", "params": []},
                                  "garbage"]).encode())[1]
    assert batch[0]["result"] == hex(270) and batch[1]["error"]["code"] == -32601
    assert batch[2]["error"]["code"] == -32600
    # "jsonrpc": "2.0" is required
    assert post(url, json.dumps({"id": 1, "method": "eth_chainId", "params": []}).encode())[1]["error"]["code"] == -32600
    wrong = post(url, json.dumps({"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}).encode())[1]
    assert wrong["error"]["code"] == -32600 and "2.0" in wrong["error"]["message"] and wrong["id"] == 1
    # subscriptions over HTTP: a clear message pointing to the WebSocket on the same port
    sub = call(url, "eth_subscribe", ["newHeads"])["error"]
    assert sub["code"] == -32601 and "WebSocket" in sub["message"] and "eth_newBlockFilter" in sub["message"]
    alive(url)


def test_notifications_get_no_reply(rollup_env) -> None:
    """JSON-RPC 2.0: a request without an id is a notification - executed, never answered."""
    url = rollup_env.url
    status, reply = post(url, json.dumps({"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []}).encode())
    assert status == 204 and reply is None
    status, reply = post(url, json.dumps([{"jsonrpc": "2.0", "method": "eth_chainId", "params": []},
                                          {"jsonrpc": "2.0", "method": "eth_blockNumber"}]).encode())
    assert status == 204 and reply is None
    status, reply = post(url, json.dumps([{"jsonrpc": "2.0", "method": "eth_chainId", "params": []},
                                          {"jsonrpc": "2.0", "id": 5, "method": "eth_chainId", "params": []},
                                          {"jsonrpc": "2.0", "id": None, "method": "eth_chainId"}]).encode())
    assert status == 200 and [r["id"] for r in reply] == [5, None]  # "id": null is a request, not a notification
    alive(url)


def test_web3_sha3_and_filters(rollup_env) -> None:
    from harness.rollup.merkle import keccak

    url = rollup_env.url
    assert call(url, "web3_sha3", ["0x68656c6c6f"])["result"] == "0x" + keccak(b"hello").hex()
    assert call(url, "web3_sha3", ["hello"])["error"]["code"] == -32602
    fid = call(url, "eth_newBlockFilter", [])["result"]
    head = int(rpc_call(url, "eth_blockNumber"), 16)
    deadline = time.monotonic() + 10
    changes: list = []
    while time.monotonic() < deadline and not changes:
        time.sleep(0.5)
        changes = call(url, "eth_getFilterChanges", [fid])["result"]
    assert changes and all(isinstance(h, str) and h.startswith("0x") for h in changes), changes
    assert int(rpc_call(url, "eth_blockNumber"), 16) > head
    assert call(url, "eth_uninstallFilter", [fid])["result"] is True
    lf = call(url, "eth_newFilter", [{"fromBlock": "finalized", "toBlock": "latest"}])["result"]
    assert isinstance(call(url, "eth_getFilterLogs", [lf])["result"], list)
    assert call(url, "eth_uninstallFilter", [lf])["result"] is True
    alive(url)


def _signed(key: bytes, **over) -> bytes:
    tx = {"type": 2, "chainId": 270, "nonce": 0, "to": "0x000000000000000000000000000000000000dEaD", "value": 1,
          "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    tx.update(over)
    return bytes(EthAccount.sign_transaction(tx, key).raw_transaction)


def test_transaction_rejections(rollup_env, rollup_account) -> None:
    url = rollup_env.url
    nonce = int(rpc_call(url, "eth_getTransactionCount", [rollup_account.address, "pending"]), 16)
    cases = {
        "chain id": _signed(rollup_account.key, chainId=1, nonce=nonce),
        "nonce too low": _signed(rollup_account.key, nonce=max(0, nonce - 1)) if nonce else None,
        "nonce too high": _signed(rollup_account.key, nonce=nonce + 5),
        "intrinsic gas": _signed(rollup_account.key, nonce=nonce, gas=20_000),
        "exceeds the block gas limit": _signed(rollup_account.key, nonce=nonce, gas=10**9),
    }
    for reason, raw in cases.items():
        if raw is None:
            continue
        r = call(url, "eth_sendRawTransaction", ["0x" + raw.hex()])
        assert "error" in r and reason in r["error"]["message"], (reason, r)
    # bad signature: flip a byte of s in a valid legacy-free EIP-1559 tx
    good = _signed(rollup_account.key, nonce=nonce)
    fields = rlp.decode(good[1:])
    fields[-1] = (int.from_bytes(fields[-1], "big") ^ 1).to_bytes(32, "big")
    forged = b"\x02" + rlp.encode(fields)
    r = call(url, "eth_sendRawTransaction", ["0x" + forged.hex()])
    # a forged signature either fails recovery or recovers a random unfunded sender (refused by nonce/funds)
    assert "error" in r, r
    # unprotected (pre-EIP-155) legacy tx
    legacy = bytes(EthAccount.sign_transaction({"nonce": nonce, "gasPrice": 10**10, "gas": 21_000,
                                                "to": "0x000000000000000000000000000000000000dEaD",
                                                "value": 1}, rollup_account.key).raw_transaction)
    r = call(url, "eth_sendRawTransaction", ["0x" + legacy.hex()])
    assert "error" in r and "EIP-155" in r["error"]["message"], r
    assert int(rpc_call(url, "eth_getTransactionCount", [rollup_account.address, "pending"]), 16) == nonce
    alive(url)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)
methods = st.sampled_from(["eth_sendRawTransaction", "eth_getBalance", "eth_call", "zks_getBlockDetails",
                           "zks_getL1BatchDetails", "rollup_batchTimings", "eth_getBlockByNumber",
                           "zks_getL1BatchBlockRange", "eth_getLogs", "eth_newFilter", "eth_getFilterChanges",
                           "web3_sha3", "eth_subscribe"]) | st.text(max_size=12)


def test_fuzz_raw_bytes_bodies(rollup_env) -> None:
    @FUZZ
    @given(st.binary(max_size=300))
    def one(body: bytes) -> None:
        status, reply = post(rollup_env.url, body)
        if reply is None:  # only a body of well-formed notifications gets no reply
            assert status == 204
            return
        assert status == 200
        replies = reply if isinstance(reply, list) else [reply]
        assert all(isinstance(r, dict) and ("error" in r or "result" in r) for r in replies)

    one()
    alive(rollup_env.url)


def test_fuzz_requests(rollup_env) -> None:
    @FUZZ
    @given(methods, json_values, st.one_of(st.integers(), st.text(max_size=5), st.none()))
    def one(method: str, params, id_) -> None:
        status, reply = post(rollup_env.url, json.dumps({"jsonrpc": "2.0", "id": id_, "method": method,
                                                         "params": params}).encode())
        assert status == 200 and isinstance(reply, dict)
        if "error" in reply:
            assert isinstance(reply["error"]["code"], int) and reply["error"]["message"]

    one()
    alive(rollup_env.url)


def test_fuzz_raw_transactions_are_rejected(rollup_env) -> None:
    @FUZZ
    @given(st.one_of(st.binary(max_size=200),
                     st.binary(max_size=200).map(lambda b: b"\x02" + b),
                     st.lists(st.binary(max_size=33), max_size=12).map(lambda fs: b"\x02" + rlp.encode(fs)),
                     st.lists(st.binary(max_size=33), max_size=10).map(rlp.encode)))
    def one(raw: bytes) -> None:
        r = call(rollup_env.url, "eth_sendRawTransaction", ["0x" + raw.hex()])
        assert "error" in r, r
        assert r["error"]["code"] in (-32602, -32000), r

    one()
    alive(rollup_env.url)


def test_node_still_healthy_after_fuzzing(rollup_env) -> None:
    alive(rollup_env.url)
