"""The node's JSON-RPC server under hostile clients: slow clients do not block others, connections and
request bodies are bounded, and 10,000 malformed requests get errors only while nothing acknowledged is lost.

The limit tests run the real server class in this process with a stub dispatch behind it (fast, and the
limits can be lowered); the fuzz test runs against the shared node of fixtures/rollup.py.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import time
import urllib.parse

import pytest
import rlp
from eth_account import Account as EthAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.chain.rpc import rpc_call
from harness.rollup import rpc_server
from harness.rollup.rpc_server import RpcServer

FUZZ_EXAMPLES = 10_000


@pytest.fixture
def stub_server(monkeypatch):
    """An RpcServer whose dispatch answers eth_blockNumber locally (no node, no engine)."""
    monkeypatch.setattr(rpc_server, "MAX_CONNECTIONS", 40)
    monkeypatch.setattr(rpc_server, "READ_TIMEOUT_S", 0.5)

    def proxy(calls):
        return [{"result": "0x2a"} for _ in calls]

    srv = RpcServer("127.0.0.1", 0, {}, proxy, lambda raws: [], "stub/0")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _block_number(conn: http.client.HTTPConnection) -> float:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
    t = time.perf_counter()
    conn.request("POST", "/", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["result"] == "0x2a"
    return time.perf_counter() - t


def test_slow_clients_do_not_block_others(stub_server) -> None:
    """30 slowloris connections (headers dribbled a byte at a time) and 5 with a stalled body; a normal
    keep-alive client meanwhile gets every reply promptly, and each stalled body gets 408 after the read timeout."""
    slow = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", stub_server.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    stalled = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", stub_server.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"js")
        stalled.append(s)
    conn = http.client.HTTPConnection("127.0.0.1", stub_server.port, timeout=5)
    times = []
    try:
        for i in range(40):
            times.append(_block_number(conn))
            if i % 10 == 0:
                for s in slow:
                    s.sendall(b"a")
        assert statistics.median(times) < 0.05, times
        for s in stalled:
            s.settimeout(5)
            head = s.recv(4096)
            assert head.startswith(b"HTTP/1.1 408"), head[:80]
        assert stub_server.read_timeouts >= 5
    finally:
        conn.close()
        for s in slow + stalled:
            s.close()


def test_connections_beyond_the_cap_are_reset_and_the_rest_served(stub_server) -> None:
    held = [socket.create_connection(("127.0.0.1", stub_server.port)) for _ in range(rpc_server.MAX_CONNECTIONS)]
    try:
        deadline = time.monotonic() + 5
        while stub_server.stats()["connections"] < rpc_server.MAX_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.02)
        extra = socket.create_connection(("127.0.0.1", stub_server.port))
        extra.settimeout(5)
        extra.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]")
        try:
            assert extra.recv(100) == b""  # reset (or closed) without a reply
        except ConnectionResetError:
            pass
        extra.close()
        assert stub_server.refused_connections >= 1
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 5  # the slots free up: a new client is served again
    while stub_server.stats()["connections"] > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    conn = http.client.HTTPConnection("127.0.0.1", stub_server.port, timeout=5)
    try:
        _block_number(conn)
    finally:
        conn.close()


# -- 10,000 malformed requests against the shared node --------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=10)
methods = st.sampled_from(["eth_sendRawTransaction", "eth_getBalance", "eth_call", "zks_getBlockDetails",
                           "zks_getL1BatchDetails", "rollup_batchTimings", "eth_getBlockByNumber", "eth_getLogs",
                           "eth_subscribe", "eth_getTransactionCount", "web3_sha3"]) | st.text(max_size=12)
request_obj = st.fixed_dictionaries({"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "id": st.integers(0, 99),
                                     "method": methods, "params": json_values})
raw_tx = st.one_of(st.binary(max_size=120), st.binary(max_size=120).map(lambda b: b"\x02" + b),
                   st.lists(st.binary(max_size=33), max_size=12).map(lambda fs: b"\x02" + rlp.encode(fs)),
                   st.lists(st.binary(max_size=33), max_size=10).map(rlp.encode))
bodies = st.one_of(
    st.binary(max_size=200),
    request_obj.map(lambda r: json.dumps(r).encode()),
    st.lists(request_obj | json_values, min_size=1, max_size=6).map(lambda rs: json.dumps(rs).encode()),
    raw_tx.map(lambda raw: json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                                       "params": ["0x" + raw.hex()]}).encode()),
)


class _Conn:
    """One keep-alive connection, reopened if the server closed it."""

    def __init__(self, url: str) -> None:
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.c = u.hostname, u.port, None

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.c.request("POST", "/", body, {"Content-Type": "application/json"})
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


@pytest.mark.chain
@pytest.mark.slow
def test_ten_thousand_malformed_requests_get_errors_and_lose_nothing(rollup_env, rollup_account) -> None:
    url = rollup_env.url
    before = rpc_call(url, "rollup_status")
    nonce = int(rpc_call(url, "eth_getTransactionCount", [rollup_account.address, "pending"]), 16)
    tx = {"type": 2, "chainId": 270, "nonce": nonce, "to": "0x000000000000000000000000000000000000dEaD", "value": 10_001,
          "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    acked = rpc_call(url, "eth_sendRawTransaction",
                     ["0x" + bytes(EthAccount.sign_transaction(tx, rollup_account.key).raw_transaction).hex()])
    conn = _Conn(url)
    seen = {"n": 0, "errors": 0, "results": 0}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(bodies)
    def one(body: bytes) -> None:
        status, data = conn.post(body)
        seen["n"] += 1
        if not data:  # only a body of well-formed notifications gets no reply
            assert status == 204
            return
        assert status == 200, (status, data[:200])
        reply = json.loads(data)
        for r in reply if isinstance(reply, list) else [reply]:
            assert isinstance(r, dict) and ("error" in r or "result" in r), r
            if "error" in r:
                assert isinstance(r["error"]["code"], int) and r["error"]["message"]
                seen["errors"] += 1
            else:
                seen["results"] += 1

    t0 = time.monotonic()
    one()
    took = time.monotonic() - t0
    print(f"\n{seen['n']} fuzzed requests in {took:.1f} s: {seen['errors']} error replies, {seen['results']} results")
    assert seen["n"] >= FUZZ_EXAMPLES * 0.95  # hypothesis may stop a little early once it exhausts its space
    after = rpc_call(url, "rollup_status")
    assert after["halted"] is None and after["txsDroppedAfterAck"] == 0
    assert after["txsAccepted"] >= before["txsAccepted"] + 1
    deadline = time.monotonic() + 30  # the tx acknowledged before the fuzz is included: nothing acked is lost
    rcpt = None
    while rcpt is None and time.monotonic() < deadline:
        rcpt = rpc_call(url, "eth_getTransactionReceipt", [acked])
        time.sleep(0.3)
    assert rcpt is not None and int(rcpt["status"], 16) == 1
