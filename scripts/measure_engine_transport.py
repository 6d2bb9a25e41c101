"""Per-request latency of one anvil engine over its IPC socket vs its HTTP listener (issue 12 item 3).

    .venv/bin/python scripts/measure_engine_transport.py               # 2,000 requests per point
    .venv/bin/python scripts/measure_engine_transport.py --n 500

One engine anvil, started as the node starts its engines (``--no-mining --order fifo``, IPC socket 0600),
whose HTTP port is read from its log for this comparison only. The node's clients are used for both
sides: :class:`~harness.chain.rpc.Rpc` over IPC and over keep-alive HTTP, one thread, one request in flight. The two transports
alternate in rounds of 100 requests, so machine load and the engine's growing tx pool (mining is off)
fall on both alike. Points: ``eth_blockNumber``; ``eth_sendRawTransaction`` (pre-signed 21,000-gas
transfers, a fresh sender per transport); a 200-tx ``eth_sendRawTransaction`` batch (the sequencer's and
the restart resubmit's shape). Prints medians / p90 in ms and writes
``reports/results/rollup/engine-transport.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402

from harness import procs  # noqa: E402
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_accounts  # noqa: E402
from harness.chain.anvil import LISTENING_RE, anvil_version  # noqa: E402
from harness.chain.rpc import Rpc  # noqa: E402
from harness.rollup.engine import Engine, EngineConfig  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "reports/results/rollup/engine-transport.json"
ROUND = 100
BATCH = 200


def _signed(key: str, n: int, start: int = 0) -> list[str]:
    return ["0x" + bytes(Account.sign_transaction(
        {"type": 2, "chainId": 270, "nonce": i, "gas": 21_000, "value": 1,
         "to": "0x000000000000000000000000000000000000dEaD", "maxFeePerGas": 10**11,
         "maxPriorityFeePerGas": 10**9}, key).raw_transaction).hex() for i in range(start, start + n)]


def _stats(ms: list[float]) -> dict:
    q = statistics.quantiles(ms, n=10)
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 4), "p90_ms": round(q[8], 4),
            "mean_ms": round(statistics.fmean(ms), 4)}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def measure(n: int, batches: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="engine-transport-"))
    eng = Engine(EngineConfig(), tmp / "logs", "engine").start()
    try:
        port = int(procs.wait_for_log_line(eng.anvil.proc, eng.anvil.log_path, LISTENING_RE, 10, "anvil").group(1))
        clients = {"ipc": Rpc(Path(eng.ipc_path)), "http": Rpc(f"http://127.0.0.1:{port}")}
        users = derive_accounts(DEFAULT_MNEMONIC, 0, 4)  # anvil's prefunded dev accounts 0-3
        txs = {"ipc": _signed(users[0].key, n), "http": _signed(users[1].key, n)}
        btx = {"ipc": _signed(users[2].key, BATCH * batches), "http": _signed(users[3].key, BATCH * batches)}
        for c in clients.values():  # connect + warm both
            for _ in range(20):
                c.call("eth_blockNumber")
        res: dict[str, dict[str, list[float]]] = {k: {"eth_blockNumber": [], "eth_sendRawTransaction": [],
                                                      f"batch_{BATCH}_sendRawTransaction": []} for k in clients}
        for r in range(0, n, ROUND):
            for k, c in clients.items():
                res[k]["eth_blockNumber"] += [_timed(lambda c=c: c.call("eth_blockNumber"))
                                              for _ in range(min(ROUND, n - r))]
            for k, c in clients.items():
                res[k]["eth_sendRawTransaction"] += [_timed(lambda c=c, t=t: c.call("eth_sendRawTransaction", [t]))
                                                     for t in txs[k][r:r + ROUND]]
        for b in range(batches):
            for k, c in clients.items():
                chunk = btx[k][b * BATCH:(b + 1) * BATCH]
                reps: list = []
                res[k][f"batch_{BATCH}_sendRawTransaction"].append(
                    _timed(lambda c=c, chunk=chunk, reps=reps: reps.extend(
                        c.batch_raw([("eth_sendRawTransaction", [t]) for t in chunk]))))
                bad = [x for x in reps if "error" in x]
                if bad:
                    raise RuntimeError(f"{k}: {len(bad)} batch txs refused: {bad[:2]}")
        pending = clients["ipc"].call("txpool_status")
        return {"anvil": anvil_version(), "n": n, "batches": batches, "round": ROUND,
                "load_avg_1m": os.getloadavg()[0], "txpool_after": pending,
                "results": {k: {m: _stats(v) for m, v in d.items()} for k, d in res.items()}}
    finally:
        eng.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="requests per single-call point and transport")
    p.add_argument("--batches", type=int, default=20, help="200-tx batches per transport")
    a = p.parse_args()
    rec = measure(a.n, a.batches)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rec, indent=1))
    print(f"anvil {rec['anvil']['version']}, load avg {rec['load_avg_1m']:.2f}")
    print("| point | IPC median / p90 (ms) | HTTP median / p90 (ms) | HTTP / IPC (median) |")
    print("|---|---|---|---|")
    for m in rec["results"]["ipc"]:
        i, h = rec["results"]["ipc"][m], rec["results"]["http"][m]
        print(f"| {m} (n={i['n']}) | {i['median_ms']:.3f} / {i['p90_ms']:.3f} | {h['median_ms']:.3f} / "
              f"{h['p90_ms']:.3f} | {h['median_ms'] / i['median_ms']:.2f} |")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
