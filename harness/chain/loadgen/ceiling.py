"""anvil's own intake ceiling (:func:`measure_ingestion_ceiling`) and its *spawn* sender process
(:func:`_ingest_sender`, unpickled by a spawned child by this module's path)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from typing import Any

from harness.chain import uniswap
from harness.chain.loadgen.instance import _get
from harness.chain.rpc import Rpc, to_int


def _ingest_sender(host: str, port: int, bodies: list[bytes], start_box: Any, ready: Any, out: Any) -> None:
    """Spawn body: open one keep-alive HTTP connection, report ready, wait for the common start time,
    POST each pre-serialized batch body and read its reply (unparsed); report (start, end, replies)."""
    import http.client

    try:
        conn = http.client.HTTPConnection(host, port, timeout=300)
        hdr = {"Content-Type": "application/json"}
        conn.request("POST", "/", b'{"jsonrpc":"2.0","id":0,"method":"eth_chainId","params":[]}', hdr)
        conn.getresponse().read()  # the connection is open and warm before the clock starts
        ready.put(os.getpid())
        while start_box.value == 0.0:
            time.sleep(0.001)
        while (wait := start_box.value - time.time()) > 0:
            time.sleep(min(wait, 0.001))
        replies = []
        t_start = time.time()
        for body in bodies:
            conn.request("POST", "/", body, hdr)
            resp = conn.getresponse()
            replies.append(resp.read())
        t_end = time.time()
        conn.close()
        out.put({"start_s": t_start, "end_s": t_end, "replies": replies, "error": None})
    except BaseException as e:  # noqa: BLE001 - shipped to the parent
        try:
            ready.put(os.getpid())
        finally:
            out.put({"start_s": None, "end_s": None, "replies": [], "error": f"{type(e).__name__}: {e}"})


def measure_ingestion_ceiling(
    url: str,
    raws: list[str],
    restore_interval_s: int,
    batch_size: int = 500,
    senders: int = 4,
    accounts: int | None = None,
    profile: dict[str, Any] | None = None,
) -> dict:
    """anvil's own ceiling (anvil-only methods), with mining off.

    Intake: ``senders`` separate processes (no shared GIL), each with one warm keep-alive HTTP
    connection, POST JSON-RPC batch bodies of ``batch_size`` ``eth_sendRawTransaction`` calls that were
    serialized *before* the clock starts; replies are read but parsed only after it stops. So the
    client spends ~a memcpy per batch and the window (first POST of any sender to the last reply of
    all, one wall clock) measures anvil's pool intake, txs/s. With ``accounts`` (``raws`` round-robin
    over that many accounts, as :func:`presign` returns them), each sender owns whole accounts and
    sends their nonces in order; otherwise chunks are dealt round-robin and the pool queues nonce gaps.
    Then one ``evm_mine``: execution rate (txs/s and gas/s). Interval mining is restored
    (``restore_interval_s``). Every tx must be accepted and included with status 1.
    """
    from urllib.parse import urlparse

    if not raws:
        raise ValueError("measure_ingestion_ceiling needs at least one raw tx")
    if accounts:
        shares = [[r for i, r in enumerate(raws) if (i % accounts) % senders == k] for k in range(senders)]
    else:
        chunks = [raws[i : i + batch_size] for i in range(0, len(raws), batch_size)]
        shares = [[r for c in chunks[k::senders] for r in c] for k in range(senders)]
    shares = [sh for sh in shares if sh]
    bodies: list[list[bytes]] = []
    for sh in shares:
        bs = []
        for i in range(0, len(sh), batch_size):
            calls = [
                {"jsonrpc": "2.0", "id": i + n, "method": "eth_sendRawTransaction", "params": [r]}
                for n, r in enumerate(sh[i : i + batch_size])
            ]
            bs.append(json.dumps(calls, separators=(",", ":")).encode())
        bodies.append(bs)
    u = urlparse(url)
    ctx = mp.get_context("spawn")
    ready_q, out_q = ctx.Queue(), ctx.Queue()
    start_box = ctx.Value("d", 0.0)
    ps = [
        ctx.Process(
            target=_ingest_sender, args=(u.hostname, u.port, b, start_box, ready_q, out_q), daemon=True
        )
        for b in bodies
    ]
    results: list[dict[str, Any]] = []
    with Rpc(url, timeout_s=120) as rpc:
        rpc.call("evm_setIntervalMining", [0])
        rpc.call("evm_setAutomine", [False])
        try:
            for p in ps:
                p.start()
            deadline = time.monotonic() + 120
            for _ in ps:
                _get(ready_q, ps, deadline, "connecting")
            with start_box.get_lock():
                start_box.value = time.time() + 0.2
            for _ in ps:
                results.append(_get(out_q, ps, time.monotonic() + 300, "sending batches"))
            errors = [r["error"] for r in results if r["error"]]
            if errors:
                raise RuntimeError(f"ingestion sender(s) failed: {errors}")
            t_ingest = max(r["end_s"] for r in results) - min(r["start_s"] for r in results)
            t1 = time.perf_counter()
            rpc.call("evm_mine")
            t_mine = time.perf_counter() - t1
        finally:
            rpc.call("evm_setIntervalMining", [restore_interval_s])
            for p in ps:
                if p.pid is None:  # never started (an earlier start failed): nothing to join
                    continue
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()
        hashes, rejected = [], []
        for r in results:
            for body in r["replies"]:
                for rep in json.loads(body):
                    if "error" in rep:
                        rejected.append(str(rep["error"].get("message", rep["error"])))
                    else:
                        hashes.append(rep["result"])
        if rejected:
            raise RuntimeError(
                f"ingestion ceiling run: {len(rejected)} of {len(raws)} txs rejected: {rejected[:3]}"
            )
        receipts = uniswap.wait_receipts(rpc, hashes, timeout_s=60)
        bad = sum(1 for rc in receipts if to_int(rc["status"]) != 1)
        blocks = {rc["blockNumber"] for rc in receipts}
        gas = sum(to_int(rc["gasUsed"]) for rc in receipts)
    if bad:
        raise RuntimeError(f"ingestion ceiling run: {bad} of {len(raws)} txs reverted")
    return {
        "n": len(raws),
        "senders": len(shares),
        "sender_kind": "processes, one keep-alive HTTP connection each, pre-serialized batch bodies",
        "batch_size": batch_size,
        "ingest_s": t_ingest,
        "ingest_tps": len(raws) / t_ingest,
        "ingest_sender_windows_s": [r["end_s"] - r["start_s"] for r in results],
        "mine_s": t_mine,
        "execute_tps": len(raws) / t_mine,
        "gas_used_total": gas,
        "gas_per_tx_mean": gas / len(raws),
        "execute_gps": gas / t_mine,
        "blocks": len(blocks),
        "chain_profile": dict(profile) if profile else {"name": "external"},
    }


