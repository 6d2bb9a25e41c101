"""Swap / transfer load generator: N generator instances as separate processes.

Each instance (a ``multiprocessing`` *spawn* process, standing in for the
paper's separate machines) owns its accounts (disjoint BIP-44 ranges of one
mnemonic), reads their nonces once, then pre-signs every transaction
*before* the measured window opens. All instances wait for one common start
time, then send:

* ``send_mode='batch'``: JSON-RPC batches of ``batch_size`` raw txs per HTTP request;
* ``send_mode='single'``: one HTTP request per tx (keep-alive session).

``loop='closed'``: as fast as the node answers. ``loop='open'``: at a target
rate (txs/s over all instances, split evenly), each tx released at its
scheduled time (a late tx is sent at once and its lag recorded).

Clock: submit times are ``time.time()`` taken just before the HTTP request
carrying the tx is sent (processes differ, so a monotonic clock is not
shared; one machine's wall clock is). Inclusion times come from the
:class:`~harness.chain.observe.BlockObserver` on the same clock.

Accounting: a tx whose request failed in transit (connection error, timeout)
is not assumed rejected: the node is asked for it by hash
(``eth_getTransactionByHash``) and, after the drain, for its receipt. Every
receipt is checked (status 0/1, ``0 < gasUsed <= the tx's gas limit``).
The drain waits ``drain_timeout_s``; by default that is derived from the
workload's gas and the chain's gas per second (:func:`drain_timeout_for`).
Every result carries the chain profile (or ``external`` with the observed
block gas limit and block time); on a profiled chain every observed block
must carry the profile's gas limit.

Swaps (``swapExactTokensForTokens``, 1 token in, no slippage limit, recipient
= sender) alternate direction A→B, B→A per account by default so the pool
stays balanced (``alternate=False``: always A→B, the price drifts; gas is
the same). Every swap carries an explicit gas limit = the larger
``eth_estimateGas`` of the two directions for the first swap of a block (the
minimal limit that always succeeds: ≈103 k for ≈87.3 k used), because anvil
admits a tx only while its gas *limit* fits in the block's remaining gas (see
:mod:`harness.chain.profiles`). Transfers: 1 wei, 21 000 gas, to the next account.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.chain import uniswap
from harness.chain.accounts import Account, derive_accounts, load_account_range
from harness.chain.metrics import (
    BlockObs,
    TxObs,
    accounting,
    check_no_missing,
    check_receipts,
    summarize,
)
from harness.chain.observe import BlockObserver, ObservationError
from harness.chain.rpc import Rpc, to_int, ws_url_for

Workload = Literal["swap", "transfer"]

#: drain timeout = DRAIN_MARGIN x the chain's minimum time to include the workload + 3 blocks + DRAIN_SLACK_S
DRAIN_MARGIN = 2.0
DRAIN_SLACK_S = 60.0
#: used only when neither a profile nor the chain's recent blocks give a gas per second
FALLBACK_DRAIN_TIMEOUT_S = 120.0
#: an open-loop tx sent more than this after its scheduled time counts as late
LATE_S = 0.010


class ProfileMismatchError(RuntimeError):
    """A block observed on a profiled chain does not carry the profile's block gas limit."""


@dataclass
class LoadConfig:
    """One load scenario. Counts are per instance; rates in txs per second over all instances.

    ``drain_timeout_s``: seconds to wait, after sending, for every accepted tx to be included; None
    (default) derives it from the workload's gas and the chain's gas per second
    (:func:`drain_timeout_for`). ``max_inclusion_uncertainty_s``: the largest allowed gap between the
    observer's poll that missed a run block and the one that saw it (the resolution of the inclusion
    times; None: not checked).
    """

    workload: Workload = "swap"
    instances: int = 1
    accounts_per_instance: int = 50
    txs_per_account: int = 20
    send_mode: Literal["batch", "single"] = "batch"
    batch_size: int = 100
    transport: Literal["http", "ws"] = "http"
    loop: Literal["closed", "open"] = "closed"
    target_tps: float | None = None
    alternate: bool = True
    swap_gas_margin: float = 1.0
    account_base: int = 1000
    start_delay_s: float = 1.0
    drain_timeout_s: float | None = None
    instance_timeout_s: float = 300.0
    poll_s: float = 0.02
    max_inclusion_uncertainty_s: float | None = 1.0

    def validate(self) -> None:
        if self.workload not in ("swap", "transfer"):
            raise ValueError(f"workload must be 'swap' or 'transfer', got {self.workload!r}")
        if self.send_mode not in ("batch", "single"):
            raise ValueError(f"send_mode must be 'batch' or 'single', got {self.send_mode!r}")
        if self.transport not in ("http", "ws"):
            raise ValueError(f"transport must be 'http' or 'ws', got {self.transport!r}")
        if self.loop not in ("closed", "open"):
            raise ValueError(f"loop must be 'closed' or 'open', got {self.loop!r}")
        if self.loop == "open" and not (self.target_tps and self.target_tps > 0):
            raise ValueError("loop='open' needs target_tps > 0")
        for name in ("instances", "accounts_per_instance", "txs_per_account", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.drain_timeout_s is not None and self.drain_timeout_s <= 0:
            raise ValueError(f"drain_timeout_s must be > 0 (or None: derived), got {self.drain_timeout_s}")

    @property
    def total_txs(self) -> int:
        return self.instances * self.accounts_per_instance * self.txs_per_account


def drain_timeout_for(
    n_txs: int,
    gas_limit_per_tx: int,
    gas_per_second: float,
    block_time_s: float,
    margin: float = DRAIN_MARGIN,
    slack_s: float = DRAIN_SLACK_S,
) -> float:
    """Seconds to wait for inclusion after sending: ``margin`` x the chain's minimum time to include the
    workload (``n_txs x gas_limit_per_tx / gas_per_second``: by gas *limit*, an upper bound) + 3
    block times (the first and last partial blocks, one for the observer) + ``slack_s`` (a node slower
    than its gas budget, a loaded machine). E.g. the paper-scale run, 5,000 swaps at 103 k gas limit on
    2.5 Mgas/s: 2 x 206 s + 36 s + 60 s = 508 s (they take ~175 s)."""
    if n_txs < 0 or gas_limit_per_tx <= 0 or gas_per_second <= 0 or block_time_s < 0 or margin < 1:
        raise ValueError(
            f"bad drain inputs: n_txs={n_txs}, gas_limit_per_tx={gas_limit_per_tx}, "
            f"gas_per_second={gas_per_second}, block_time_s={block_time_s}, margin={margin}"
        )
    return margin * n_txs * gas_limit_per_tx / gas_per_second + 3 * block_time_s + slack_s


def chain_rates(url: str, profile: dict[str, Any] | None, sample_blocks: int = 10) -> dict[str, Any]:
    """Gas per second and block time of the target: the profile's when it has them, else estimated
    from the last ``sample_blocks`` headers (latest gas limit / mean header-timestamp gap, >= 1 s).
    ``{'gas_per_second', 'block_time_s', 'gas_limit', 'basis'}``; the rates are None if unknowable."""
    if profile and profile.get("gas_limit") and profile.get("block_time_s"):
        return {
            "gas_per_second": profile["gas_limit"] / profile["block_time_s"],
            "block_time_s": float(profile["block_time_s"]),
            "gas_limit": int(profile["gas_limit"]),
            "basis": f"profile {profile.get('name')}",
        }
    with Rpc(url) as rpc:
        head = to_int(rpc.call("eth_blockNumber"))
        first = max(0, head - sample_blocks)
        nums = list(range(first, head + 1))
        hdrs = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in nums])
    hdrs = [h for h in hdrs if h]
    if len(hdrs) < 2:
        gas_limit = to_int(hdrs[-1]["gasLimit"]) if hdrs else None
        return {"gas_per_second": None, "block_time_s": None, "gas_limit": gas_limit, "basis": "unknown"}
    ts = [to_int(h["timestamp"]) for h in hdrs]
    block_time = max(1.0, (ts[-1] - ts[0]) / (len(ts) - 1))
    gas_limit = to_int(hdrs[-1]["gasLimit"])
    return {
        "gas_per_second": gas_limit / block_time,
        "block_time_s": block_time,
        "gas_limit": gas_limit,
        "basis": f"observed (blocks {first}..{head})",
    }


@dataclass
class InstanceJob:
    """What one generator process needs (picklable)."""

    instance: int
    url: str
    chain_id: int
    keys: list[str]
    workload: Workload
    txs_per_account: int
    send_mode: str
    batch_size: int
    loop: str
    rate_tps: float | None
    alternate: bool
    gas_limit: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    router: str = ""
    token_a: str = ""
    token_b: str = ""
    timeout_s: float = 300.0


@dataclass
class InstanceResult:
    """One instance's record. Open loop: ``max_lag_s``/``mean_lag_s`` (send time - scheduled time, s)
    and ``late_txs`` (lag > LATE_S). ``transport_errors``: requests that failed in transit."""

    instance: int
    sign_s: float
    send_s: float
    txs: list[dict[str, Any]] = field(default_factory=list)
    max_lag_s: float = 0.0
    mean_lag_s: float = 0.0
    late_txs: int = 0
    transport_errors: int = 0
    request_rtts_s: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None


def _presign(job: InstanceJob) -> tuple[list[str], list[str]]:
    """All raw txs of this instance, round-robin over accounts so each account's nonces go out in order."""
    accts = [Account.from_key(bytes.fromhex(k)) for k in job.keys]
    with Rpc(job.url) as rpc:
        nonces = [
            to_int(n) for n in rpc.batch([("eth_getTransactionCount", [a.address, "pending"]) for a in accts])
        ]
    fees = {"maxFeePerGas": job.max_fee_per_gas, "maxPriorityFeePerGas": job.max_priority_fee_per_gas}
    calldata_cache: dict[tuple[str, int], str] = {}
    raws, hashes = [], []
    for j in range(job.txs_per_account):
        for i, a in enumerate(accts):
            tx: dict[str, Any] = {"type": 2, "chainId": job.chain_id, "nonce": nonces[i] + j, **fees}
            if job.workload == "swap":
                forward = (j % 2 == 0) or not job.alternate
                key = (a.address, int(forward))
                if key not in calldata_cache:
                    path = [job.token_a, job.token_b] if forward else [job.token_b, job.token_a]
                    calldata_cache[key] = uniswap.swap_calldata(uniswap.SWAP_AMOUNT_IN, path, a.address)
                tx.update({"to": job.router, "value": 0, "gas": job.gas_limit, "data": calldata_cache[key]})
            else:
                tx.update(
                    {"to": accts[(i + 1) % len(accts)].address, "value": 1, "gas": 21_000, "data": "0x"}
                )
            raw, h = a.sign(tx)
            raws.append(raw)
            hashes.append(h)
    return raws, hashes


def _tx_gas_limit(job: InstanceJob) -> int:
    return job.gas_limit if job.workload == "swap" else 21_000


def run_instance(job: InstanceJob, start_at: Callable[[], float], ready: Any, out: Any) -> None:
    """Process body: pre-sign, report ready, wait for ``start_at()`` (wall-clock s), send, put the result.

    A request that fails in transit marks its txs ``accepted=None`` ("unknown"): the controller asks
    the node whether it has them (it may have accepted a tx whose reply was lost).
    """
    res = InstanceResult(job.instance, 0.0, 0.0)
    try:
        t0 = time.perf_counter()
        raws, hashes = _presign(job)
        res.sign_s = time.perf_counter() - t0
        ready.put(job.instance)
        t_go = start_at()
        recs: list[dict[str, Any]] = []
        gas_limit = _tx_gas_limit(job)
        lag_sum = 0.0
        with Rpc(job.url, timeout_s=60.0) as rpc:
            while (wait := t_go - time.time()) > 0:
                time.sleep(min(wait, 0.05))
            t_start = time.time()
            deadline = time.monotonic() + job.timeout_s
            step = job.batch_size if job.send_mode == "batch" else 1
            i = 0
            while i < len(raws):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"instance {job.instance}: sending took over {job.timeout_s:.0f} s")
                if job.loop == "open":
                    due = t_start + i / job.rate_tps
                    now = time.time()
                    if due > now:
                        time.sleep(due - now)
                    n_due = int(math.floor((time.time() - t_start) * job.rate_tps)) + 1
                    j = min(len(raws), max(i + 1, min(i + step, n_due)))
                else:
                    j = min(len(raws), i + step)
                submit = time.time()
                if job.loop == "open":
                    for k in range(i, j):
                        lag = submit - (t_start + k / job.rate_tps)
                        if lag > 0:
                            lag_sum += lag
                            res.max_lag_s = max(res.max_lag_s, lag)
                        if lag > LATE_S:
                            res.late_txs += 1
                method = "eth_sendRawTransaction" if step == 1 else "eth_sendRawTransaction[batch]"
                t_req = time.perf_counter()
                try:
                    if step == 1:
                        try:
                            replies = [{"result": rpc.call("eth_sendRawTransaction", [raws[i]])}]
                        except Exception as e:  # noqa: BLE001 - a JSON-RPC error reply is a rejection
                            if getattr(e, "method", None) is None:
                                raise
                            replies = [{"error": {"message": str(e)}}]
                    else:
                        replies = rpc.batch_raw([("eth_sendRawTransaction", [r]) for r in raws[i:j]])
                    transport = None
                except Exception as e:  # noqa: BLE001 - transport failure: the txs' fate is unknown
                    res.transport_errors += 1
                    transport = f"transport: {type(e).__name__}: {e}"
                    replies = [{}] * (j - i)
                res.request_rtts_s.setdefault(method, []).append(time.perf_counter() - t_req)
                for h, rep in zip(hashes[i:j], replies, strict=False):
                    err = rep.get("error")
                    recs.append(
                        {
                            "tx_hash": h,
                            "instance": job.instance,
                            "submit_s": submit,
                            "accepted": None if transport else err is None,
                            "error": transport
                            if transport
                            else (None if err is None else str(err.get("message", err))),
                            "gas_limit": gas_limit,
                        }
                    )
                i = j
            res.send_s = time.time() - t_start
        if job.loop == "open" and recs:
            res.mean_lag_s = lag_sum / len(recs)
        res.txs = recs
    except BaseException as e:  # noqa: BLE001 - shipped to the parent, which raises it
        res.error = f"{type(e).__name__}: {e}"
        try:
            ready.put(job.instance)
        except Exception:  # noqa: BLE001
            pass
    out.put(asdict(res))


@dataclass
class LoadResult:
    """Everything one run recorded, plus its summary (``metrics``); JSON-able via :meth:`as_dict`.

    ``chain`` always has ``profile`` (a named profile, or ``{'name': 'external', ...}`` with the
    observed block gas limit and block time) and ``observed`` (what the run's blocks carried).
    """

    config: dict[str, Any]
    chain: dict[str, Any]
    txs: list[TxObs]
    blocks: list[BlockObs]
    metrics: dict[str, Any]
    instances: list[dict[str, Any]]
    clock: str = "time.time() wall clock of one machine (submit: before the HTTP request; inclusion: first poll seeing the block)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "chain": self.chain,
            "metrics": self.metrics,
            "instances": self.instances,
            "clock": self.clock,
            "blocks": [asdict(b) for b in self.blocks],
            "txs": [asdict(t) for t in self.txs],
        }


def _swap_gas_limit(url: str, cfg: LoadConfig, mnemonic: str, deployment: Any) -> int:
    probe = derive_accounts(mnemonic, cfg.account_base, 1)[0]
    return uniswap.swap_gas_limit(
        uniswap.estimate_swap_gas(url, deployment, probe)["max"], cfg.swap_gas_margin
    )


def _jobs(
    url: str, cfg: LoadConfig, mnemonic: str, deployment: Any, swap_gas_limit: int | None, cid: int, fees: Any
) -> list[InstanceJob]:
    jobs = []
    for k in range(cfg.instances):
        start, count = load_account_range(k, cfg.accounts_per_instance, cfg.account_base)
        jobs.append(
            InstanceJob(
                instance=k,
                url=ws_url_for(url) if cfg.transport == "ws" else url,
                chain_id=cid,
                keys=[a.key.hex() for a in derive_accounts(mnemonic, start, count)],
                workload=cfg.workload,
                txs_per_account=cfg.txs_per_account,
                send_mode=cfg.send_mode,
                batch_size=cfg.batch_size,
                loop=cfg.loop,
                rate_tps=(cfg.target_tps / cfg.instances) if cfg.target_tps else None,
                alternate=cfg.alternate,
                gas_limit=swap_gas_limit or 21_000,
                max_fee_per_gas=fees.max_fee_per_gas,
                max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                router=deployment.router if deployment else "",
                token_a=deployment.token_a if deployment else "",
                token_b=deployment.token_b if deployment else "",
                timeout_s=cfg.instance_timeout_s,
            )
        )
    return jobs


def presign(
    url: str,
    cfg: LoadConfig,
    mnemonic: str,
    deployment: uniswap.UniswapDeployment | None = None,
    swap_gas_limit: int | None = None,
    instance: int = 0,
) -> tuple[list[str], list[str]]:
    """The raw txs (and hashes) generator ``instance`` of ``cfg`` would send, signed now, in send order
    (round-robin over its ``cfg.accounts_per_instance`` accounts: tx ``i`` is account ``i % accounts``'s)."""
    cfg.validate()
    with Rpc(url) as rpc:
        cid = to_int(rpc.call("eth_chainId"))
        fees = uniswap.fee_params(rpc)
    if cfg.workload == "swap" and swap_gas_limit is None:
        swap_gas_limit = _swap_gas_limit(url, cfg, mnemonic, deployment)
    full = LoadConfig(**{**asdict(cfg), "instances": instance + 1})
    job = _jobs(url, full, mnemonic, deployment, swap_gas_limit, cid, fees)[instance]
    job.rate_tps = None
    return _presign(job)


# -- anvil's own intake ceiling ------------------------------------------------------------------------------
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


def _noop(msg: str) -> None:
    pass


# -- the load run ---------------------------------------------------------------------------------------------
class LoadRun:
    """One load run in three phases, so a caller can time the send window alone:

    * :meth:`prepare`: spawn the instances, let them pre-sign, start the block observer;
    * :meth:`send`: publish the common start time, wait until every instance has sent everything;
    * :meth:`finish`: drain (wait for inclusion), fetch and check every receipt, compute the metrics.

    :func:`run_load` does all three; :meth:`close` (also on error) kills what is left.
    """

    def __init__(
        self,
        url: str,
        cfg: LoadConfig,
        mnemonic: str,
        deployment: uniswap.UniswapDeployment | None = None,
        swap_gas_limit: int | None = None,
        chain_info: dict[str, Any] | None = None,
        progress: Callable[[str], None] = _noop,
        require_no_missing: bool = True,
        strict_observation: bool | None = None,
        after_send: Callable[[list[str]], None] | None = None,
    ):
        cfg.validate()
        if cfg.workload == "swap" and deployment is None:
            raise ValueError("workload 'swap' needs a Uniswap deployment")
        self.url, self.cfg, self.mnemonic, self.deployment = url, cfg, mnemonic, deployment
        self.swap_gas_limit = swap_gas_limit
        self.chain_info = dict(chain_info or {})
        self.progress = progress
        self.require_no_missing = require_no_missing
        self.strict_observation = require_no_missing if strict_observation is None else strict_observation
        self.after_send = after_send
        self.procs: list[Any] = []
        self.results: list[dict[str, Any]] = []
        self.observer = BlockObserver(url, poll_s=cfg.poll_s)
        self._observer_started = False
        self.send_phase_s: float | None = None

    # phase 1
    def prepare(self) -> LoadRun:
        cfg = self.cfg
        with Rpc(self.url) as rpc:
            self.cid = to_int(rpc.call("eth_chainId"))
            fees = uniswap.fee_params(rpc)
        if cfg.workload == "swap" and self.swap_gas_limit is None:
            self.swap_gas_limit = _swap_gas_limit(self.url, cfg, self.mnemonic, self.deployment)
        self.tx_gas_limit = self.swap_gas_limit if cfg.workload == "swap" else 21_000
        self.rates = chain_rates(self.url, self.chain_info.get("profile"))
        jobs = _jobs(self.url, cfg, self.mnemonic, self.deployment, self.swap_gas_limit, self.cid, fees)
        ctx = mp.get_context("spawn")
        self._ready_q, self._out_q = ctx.Queue(), ctx.Queue()
        self._start_box = ctx.Value("d", 0.0)  # the common start time, published once all are ready
        for job in jobs:
            p = ctx.Process(
                target=_instance_entry, args=(job, self._start_box, self._ready_q, self._out_q), daemon=True
            )
            p.start()
            self.procs.append(p)
        self.progress(f"{cfg.instances} instance(s) pre-signing {cfg.total_txs} {cfg.workload} txs")
        self._t_wait = time.monotonic() + cfg.instance_timeout_s
        for _ in jobs:
            _get(self._ready_q, self.procs, self._t_wait, "pre-signing")
        self.observer.start()
        self._observer_started = True
        return self

    # phase 2
    def send(self) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        with self._start_box.get_lock():
            self._start_box.value = time.time() + self.cfg.start_delay_s
        self.progress("sending")
        for _ in self.procs:
            self.results.append(_get(self._out_q, self.procs, self._t_wait, "sending"))
        self.send_phase_s = time.perf_counter() - t0
        errors = [r["error"] for r in self.results if r["error"]]
        if errors:
            raise RuntimeError(f"generator instance(s) failed: {errors}")
        self._resolve_unknown()
        return self.results

    def _resolve_unknown(self) -> None:
        """A tx whose request failed in transit: accepted if the node knows it, else rejected (for now:
        its receipt is looked up again after the drain)."""
        unknown = [t for r in self.results for t in r["txs"] if t["accepted"] is None]
        if not unknown:
            return
        with Rpc(self.url) as rpc:
            for i in range(0, len(unknown), 500):
                chunk = unknown[i : i + 500]
                got = rpc.batch_raw([("eth_getTransactionByHash", [t["tx_hash"]]) for t in chunk])
                for t, rep in zip(chunk, got, strict=False):
                    known = rep.get("result") is not None
                    t["accepted"] = known
                    t["error"] = (
                        f"{t['error']} (the node has the tx: accepted)"
                        if known
                        else f"{t['error']} (unknown to the node: rejected)"
                    )

    # phase 3
    def finish(self) -> LoadResult:
        cfg, url = self.cfg, self.url
        recs = [t for r in self.results for t in r["txs"]]
        accepted_order = [t["tx_hash"] for t in recs if t["accepted"]]
        accepted = set(accepted_order)
        self.progress(f"sent {len(recs)} txs ({len(accepted)} accepted); waiting for inclusion")
        if self.after_send is not None:
            self.after_send(accepted_order)
        if cfg.drain_timeout_s is not None:
            drain_timeout, basis = cfg.drain_timeout_s, "explicit"
        elif self.rates["gas_per_second"]:
            drain_timeout = drain_timeout_for(
                len(accepted), self.tx_gas_limit, self.rates["gas_per_second"], self.rates["block_time_s"]
            )
            basis = (
                f"{DRAIN_MARGIN:g} x {len(accepted)} txs x {self.tx_gas_limit} gas / "
                f"{self.rates['gas_per_second']:.4g} gas/s ({self.rates['basis']}) + 3 blocks + {DRAIN_SLACK_S:g} s"
            )
        else:
            drain_timeout, basis = FALLBACK_DRAIN_TIMEOUT_S, "fallback (no profile, no block history)"
        t_drain = time.monotonic()
        deadline = t_drain + drain_timeout
        next_note = t_drain + 2.0
        while True:
            seen = self.observer.seen_hashes()
            if accepted <= seen or self.observer.failure:
                break
            now = time.monotonic()
            if now > deadline:
                break
            if now >= next_note:
                self.progress(
                    f"drain: {len(accepted & seen)}/{len(accepted)} included, "
                    f"{now - t_drain:.0f}/{drain_timeout:.0f} s"
                )
                next_note = now + 2.0
            time.sleep(0.05)
        drain_s = time.monotonic() - t_drain
        blocks = self.observer.stop()
        last_poll = self.observer.last_poll_s
        # receipts: every accepted tx, and every transport-failed one the node did not know (it may
        # have been included after all)
        retry = {t["tx_hash"] for t in recs if not t["accepted"] and str(t["error"]).startswith("transport")}
        want = [t["tx_hash"] for t in recs if t["accepted"] or t["tx_hash"] in retry]
        receipts: dict[str, dict[str, Any]] = {}
        with Rpc(url) as rpc:
            for i in range(0, len(want), 500):
                chunk = want[i : i + 500]
                for h, rc in zip(
                    chunk, rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk]), strict=False
                ):
                    if rc is not None:
                        if rc.get("transactionHash", h).lower() != h.lower():
                            raise RuntimeError(f"receipt for {h} names {rc.get('transactionHash')}")
                        receipts[h] = rc
            block_nums = {b.number for b in blocks}
            unseen = sorted({to_int(rc["blockNumber"]) for rc in receipts.values()} - block_nums)
            for n in unseen:  # included in a block the observer never saw: fetch it; its time is unknown
                b = rpc.call("eth_getBlockByNumber", [hex(n), False])
                blocks.append(
                    BlockObs(
                        n,
                        time.time(),
                        to_int(b["timestamp"]),
                        to_int(b["gasUsed"]),
                        to_int(b["gasLimit"]),
                        tuple(b["transactions"]),
                        prev_poll_s=last_poll,
                    )
                )
        for t in recs:
            if t["tx_hash"] in retry and t["tx_hash"] in receipts:
                t["accepted"] = True
                t["error"] = f"{t['error']}; included after all (receipt found)"
        txs = []
        for t in recs:
            rc = receipts.get(t["tx_hash"])
            txs.append(
                TxObs(
                    tx_hash=t["tx_hash"],
                    instance=t["instance"],
                    submit_s=t["submit_s"],
                    accepted=bool(t["accepted"]),
                    error=t["error"],
                    block_number=to_int(rc["blockNumber"]) if rc else None,
                    status=to_int(rc["status"]) if rc else None,
                    gas_used=to_int(rc["gasUsed"]) if rc else None,
                    gas_limit=t.get("gas_limit"),
                )
            )
        blocks.sort(key=lambda b: b.number)
        check_receipts(txs)
        chain = self._chain_record(blocks)
        run_block_nums = {t.block_number for t in txs if t.block_number is not None}
        metrics = summarize(txs, blocks)
        uncert = [b.seen_uncertainty_s for b in blocks if b.number in run_block_nums and b.prev_poll_s]
        metrics.update(
            {
                "blocks_unseen_by_observer": len(unseen),
                "observer_errors": len(self.observer.errors),
                "observer_failure": self.observer.failure,
                "observer_polls": self.observer.polls,
                "inclusion_uncertainty_max_s": max(uncert) if uncert else None,
                "send_rate_tps": _send_rate(self.results),
                "send_window_s": _send_window(self.results),
                "send_phase_s": self.send_phase_s,
                "transport_errors": sum(r.get("transport_errors", 0) for r in self.results),
                "transport": cfg.transport,
                "request_latency": request_latency(self.results),
                "swap_gas_limit": self.tx_gas_limit,  # (historical name) the gas limit of every tx
                "gas_limit_per_tx": self.tx_gas_limit,
                "drain_timeout_s": drain_timeout,
                "drain_timeout_basis": basis,
                "drain_s": drain_s,
            }
        )
        if cfg.loop == "open":
            metrics.update(
                {
                    "open_loop_target_tps": cfg.target_tps,
                    "open_loop_max_lag_s": max(r["max_lag_s"] for r in self.results),
                    "open_loop_mean_lag_s": sum(r["mean_lag_s"] * len(r["txs"]) for r in self.results)
                    / max(1, len(recs)),
                    "open_loop_late_txs": sum(r["late_txs"] for r in self.results),
                    "open_loop_late_threshold_s": LATE_S,
                }
            )
        result = LoadResult(
            asdict(cfg),
            chain,
            txs,
            blocks,
            metrics,
            [{k: v for k, v in r.items() if k not in ("txs", "request_rtts_s")} for r in self.results],
        )
        self.progress(_line(metrics))
        if self.require_no_missing:
            check_no_missing(accounting(txs))
        if self.strict_observation:
            self.observer.check(cfg.max_inclusion_uncertainty_s, run_block_nums)
            if unseen:
                raise ObservationError(
                    f"{len(unseen)} block(s) holding run txs were never seen by the observer "
                    f"(inclusion time unknown): {unseen[:10]}"
                )
        return result

    def _chain_record(self, blocks: list[BlockObs]) -> dict[str, Any]:
        """``chain`` of the result: url, chain id, the profile (or 'external' + observed), observed values;
        on a profiled chain every observed block must carry the profile's gas limit."""
        info = dict(self.chain_info)
        limits = sorted({b.gas_limit for b in blocks})
        seen_gaps = [
            b2.seen_s - b1.seen_s
            for b1, b2 in zip(blocks, blocks[1:], strict=False)
            if b2.number == b1.number + 1
        ]
        hdr_gaps = [
            b2.timestamp - b1.timestamp
            for b1, b2 in zip(blocks, blocks[1:], strict=False)
            if b2.number == b1.number + 1
        ]
        observed = {
            "blocks": len(blocks),
            "block_gas_limits": limits,
            "block_interval_seen_median_s": statistics.median(seen_gaps) if seen_gaps else None,
            "block_interval_header_median_s": statistics.median(hdr_gaps) if hdr_gaps else None,
            "rates_used_for_drain": self.rates,
        }
        profile = dict(info.get("profile") or {})
        if not profile:
            profile = {"name": "external"}
        if profile.get("gas_limit"):
            wrong = [b.number for b in blocks if b.gas_limit != profile["gas_limit"]]
            if wrong:
                raise ProfileMismatchError(
                    f"profile {profile.get('name')} has block gas limit {profile['gas_limit']}, but observed "
                    f"block(s) {wrong[:10]} carry {sorted({b.gas_limit for b in blocks if b.number in wrong})}"
                )
        else:
            profile.setdefault("observed_gas_limit", limits[-1] if len(limits) == 1 else limits)
            profile.setdefault("observed_block_time_s", observed["block_interval_header_median_s"])
        info.update({"url": self.url, "chain_id": self.cid, "profile": profile, "observed": observed})
        return info

    def close(self) -> None:
        if self._observer_started:
            self.observer.stop()
        for p in self.procs:
            p.join(timeout=10 if self.results else 1)
            if p.is_alive():
                p.kill()

    def run(self) -> LoadResult:
        try:
            self.prepare()
            self.send()
            return self.finish()
        finally:
            self.close()


def run_load(
    url: str,
    cfg: LoadConfig,
    mnemonic: str,
    deployment: uniswap.UniswapDeployment | None = None,
    swap_gas_limit: int | None = None,
    chain_info: dict[str, Any] | None = None,
    progress: Callable[[str], None] = _noop,
    require_no_missing: bool = True,
    strict_observation: bool | None = None,
    after_send: Callable[[list[str]], None] | None = None,
) -> LoadResult:
    """Run ``cfg`` against ``url``: accounts must already be funded (and approved, for swaps).

    Starts ``cfg.instances`` spawn processes, observes blocks, waits for every accepted tx (bounded by
    the drain timeout, see :class:`LoadConfig`), fetches and checks every receipt
    (:class:`~harness.chain.metrics.ReceiptError`), returns a :class:`LoadResult` whose ``chain`` carries
    the profile (``chain_info['profile']``; a named profile's gas limit is checked against every block:
    :class:`ProfileMismatchError`). Raises :class:`~harness.chain.metrics.MissingTransactionsError` if
    an accepted tx never got a receipt (``require_no_missing``), listing the count and hashes, and
    :class:`~harness.chain.observe.ObservationError` if the observer gave up, missed a run block or saw
    one later than ``cfg.max_inclusion_uncertainty_s`` (``strict_observation``; default: the same as
    ``require_no_missing``; otherwise these are only recorded in ``metrics``). ``after_send`` is called
    with the accepted hashes (send order) before the drain (fault injection in tests).
    """
    return LoadRun(
        url,
        cfg,
        mnemonic,
        deployment,
        swap_gas_limit,
        chain_info,
        progress,
        require_no_missing,
        strict_observation,
        after_send,
    ).run()


def _get(q: Any, procs: list[Any], deadline: float, stage: str) -> Any:
    """``q.get`` bounded by ``deadline`` (monotonic), failing fast if an instance process died."""
    import queue

    while True:
        try:
            return q.get(timeout=0.2)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a generator instance died while {stage} (exit codes {dead})") from None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"generator instances not done {stage} within the instance timeout"
                ) from None


def _instance_entry(job: InstanceJob, start_box: Any, ready: Any, out: Any) -> None:
    """Spawn entry: the common start time is published by the parent once every instance is ready."""

    def start_at() -> float:
        deadline = time.monotonic() + job.timeout_s
        while start_box.value == 0.0 and time.monotonic() < deadline:
            time.sleep(0.005)
        if start_box.value == 0.0:
            raise TimeoutError(f"instance {job.instance}: no start signal within {job.timeout_s:.0f} s")
        return start_box.value

    run_instance(job, start_at, ready, out)


def request_latency(results: list[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """Reply time of every send request (s, from just before the request to its decoded reply), per RPC
    method over all instances: n, p50, p90, p99, max. A transport stall shows here whatever TPS says."""
    import numpy as np

    out: dict[str, dict[str, float | int]] = {}
    by_method: dict[str, list[float]] = {}
    for r in results:
        for method, rtts in (r.get("request_rtts_s") or {}).items():
            by_method.setdefault(method, []).extend(rtts)
    for method, rtts in sorted(by_method.items()):
        a = np.asarray(rtts)
        out[method] = {"n": int(a.size), "p50_s": float(np.percentile(a, 50)), "p90_s": float(np.percentile(a, 90)),
                       "p99_s": float(np.percentile(a, 99)), "max_s": float(a.max())}
    return out


def _send_window(results: list[dict[str, Any]]) -> float | None:
    """Seconds from the first submit of any instance to the end of the last instance's last request."""
    rs = [r for r in results if r["txs"]]
    if not rs:
        return None
    starts = [min(t["submit_s"] for t in r["txs"]) for r in rs]
    ends = [s + r["send_s"] for s, r in zip(starts, rs, strict=False)]
    return max(ends) - min(starts)


def _send_rate(results: list[dict[str, Any]]) -> float | None:
    """Aggregate send rate: all txs / (last instance's send end - first send start), txs/s."""
    n = sum(len(r["txs"]) for r in results)
    span = _send_window(results)
    return n / span if span else None


def _line(m: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return f"{x:.1f}" if isinstance(x, float) else str(x)

    a = m["accounting"]
    return (
        f"included {a['included']}/{a['sent']} (failed {a['failed']}, rejected {a['rejected']}, missing "
        f"{a['missing']}); TPS sustained {f(m['tps_sustained'])} peak {f(m['tps_peak'])} paper "
        f"{f(m['tps_paper_formula'])}; GPS {f(m['gps_sustained'])}; latency p50 {f(m['latency_p50_s'])} s "
        f"p99 {f(m['latency_p99_s'])} s"
        + "".join(f"; {meth} reply p50 {v['p50_s'] * 1e3:.1f} ms p99 {v['p99_s'] * 1e3:.1f} ms ({m.get('transport')})"
                  for meth, v in (m.get("request_latency") or {}).items())
    )


def stderr_progress(quiet: bool = False) -> Callable[[str], None]:
    """A progress printer to stderr (no-op when ``quiet`` or the CI env var is set)."""
    if quiet or os.environ.get("CI"):
        return _noop
    return lambda msg: print(f"[loadgen] {msg}", file=sys.stderr, flush=True)
