"""Per-request latency of a JSON-RPC endpoint, one request at a time on one warm connection.

The reference for "is our node what limits a throughput figure": run the same probe against the node and
against a raw anvil in the same run and compare medians. Two methods: ``eth_blockNumber`` (transport and
dispatch only) and ``eth_sendRawTransaction`` (pre-signed 1-wei transfers with consecutive nonces from
one funded key: decoding, signature recovery, the node's write-ahead log and the engine hand-off).
Times are ``time.perf_counter()`` seconds from just before the request to its decoded reply.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.chain.accounts import Account
from harness.chain.rpc import Rpc, to_int, ws_url_for
from harness.chain.uniswap import fee_params

SINK = "0x000000000000000000000000000000000000dEaD"


@dataclass
class LatencySample:
    """Reply times (s) of ``n`` sequential requests of one method on one endpoint and transport."""

    url: str
    transport: str
    method: str
    times_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        t = sorted(self.times_s)
        q = statistics.quantiles(t, n=100, method="inclusive") if len(t) > 1 else [t[0]] * 99
        return {"url": self.url, "transport": self.transport, "method": self.method, "n": len(t),
                "median_s": statistics.median(t), "p90_s": q[89], "p99_s": q[98], "min_s": t[0], "max_s": t[-1]}


def presign_transfers(url: str, key: str, n: int) -> list[str]:
    """``n`` signed 1-wei transfers from ``key`` with consecutive nonces starting at its pending nonce."""
    acct = Account.from_key(key)
    with Rpc(url) as rpc:
        chain_id = to_int(rpc.call("eth_chainId"))
        nonce = to_int(rpc.call("eth_getTransactionCount", [acct.address, "pending"]))
        fees = fee_params(rpc, multiplier=4.0)
    return [acct.sign({"type": 2, "chainId": chain_id, "nonce": nonce + i, "to": SINK, "value": 1, "gas": 21_000,
                       "data": "0x", "maxFeePerGas": fees.max_fee_per_gas,
                       "maxPriorityFeePerGas": fees.max_priority_fee_per_gas})[0] for i in range(n)]


def _timed(rpc: Rpc, method: str, params: list) -> float:
    t = time.perf_counter()
    rpc.call(method, params)
    return time.perf_counter() - t


def probe_pair(
    urls: dict[str, str], key: str, n: int = 200, transport: str = "http", warmup: int = 10,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, dict[str, LatencySample]]:
    """Per-request latency of ``eth_blockNumber`` and ``eth_sendRawTransaction`` on every endpoint in
    ``urls`` (name -> HTTP URL), interleaved request by request so every endpoint sees the same machine
    load. Returns ``{name: {method: LatencySample}}``. ``key`` must be funded on every endpoint."""
    raws = {name: presign_transfers(u, key, n + warmup) for name, u in urls.items()}
    clients = {name: Rpc(ws_url_for(u) if transport == "ws" else u) for name, u in urls.items()}
    out = {name: {m: LatencySample(urls[name], transport, m) for m in ("eth_blockNumber", "eth_sendRawTransaction")}
           for name in urls}
    try:
        for i in range(n + warmup):
            for name, rpc in clients.items():
                tb = _timed(rpc, "eth_blockNumber", [])
                ts = _timed(rpc, "eth_sendRawTransaction", [raws[name][i]])
                if i >= warmup:
                    out[name]["eth_blockNumber"].times_s.append(tb)
                    out[name]["eth_sendRawTransaction"].times_s.append(ts)
            if on_round is not None:
                on_round(i)
    finally:
        for rpc in clients.values():
            rpc.close()
    return out
