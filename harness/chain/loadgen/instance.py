"""One generator instance: its job (picklable), pre-signing (:func:`presign` for a caller), the send
loop (:func:`run_instance`) and the *spawn* entry point :func:`_instance_entry` (a spawned child
unpickles it by this module's path); also the parent's side: building the jobs (:func:`_jobs`) and
waiting on the instances' queues (:func:`_get`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.chain import uniswap
from harness.chain.accounts import Account, derive_accounts, load_account_range
from harness.chain.loadgen.config import LATE_S, LoadConfig, Workload
from harness.chain.metrics import TxObs
from harness.chain.rpc import Rpc, to_int, ws_url_for


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
    txs: list[TxObs] = field(default_factory=list)
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
                        TxObs(
                            tx_hash=h,
                            instance=job.instance,
                            submit_s=submit,
                            accepted=None if transport else err is None,
                            error=transport if transport else (None if err is None else str(err.get("message", err))),
                            gas_limit=gas_limit,
                        )
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
    # shallow: the TxObs records travel as they are (pickled), not as dicts
    out.put({f.name: getattr(res, f.name) for f in fields(res)})



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

