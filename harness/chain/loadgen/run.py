"""The load run's controller: :class:`LoadRun` (prepare / send / finish) and :func:`run_load`."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from harness.chain import uniswap
from harness.chain.loadgen.config import LATE_S, LoadConfig, chain_rates, drain_timeout_choice
from harness.chain.loadgen.instance import _get, _instance_entry, _jobs, _swap_gas_limit
from harness.chain.loadgen.summary import (
    LoadResult,
    _line,
    _noop,
    _send_rate,
    _send_window,
    chain_record,
    request_latency,
)
from harness.chain.metrics import (
    BlockObs,
    TxObs,
    accounting,
    check_no_missing,
    check_receipts,
    summarize,
)
from harness.chain.observe import BlockObserver, ObservationError
from harness.chain.rpc import Rpc, to_int


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
        ws_url: str | None = None,
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
        # newHeads over ws_url (default: the same host and port as url) where offered, else polling
        self.observer = BlockObserver(url, poll_s=cfg.poll_s, mode=cfg.observe, ws_url=ws_url)
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
        unknown = [(r["txs"], j) for r in self.results for j, t in enumerate(r["txs"]) if t.accepted is None]
        if not unknown:
            return
        with Rpc(self.url) as rpc:
            for i in range(0, len(unknown), 500):
                chunk = unknown[i : i + 500]
                got = rpc.batch_raw([("eth_getTransactionByHash", [txs[j].tx_hash]) for txs, j in chunk])
                for (txs, j), rep in zip(chunk, got, strict=False):
                    t, known = txs[j], rep.get("result") is not None
                    why = "the node has the tx: accepted" if known else "unknown to the node: rejected"
                    txs[j] = replace(t, accepted=known, error=f"{t.error} ({why})")

    # phase 3
    def finish(self) -> LoadResult:
        """Drain, fetch every receipt (and the blocks the observer missed), build the per-tx records,
        check the receipts, compute the metrics, then (after the result is built and its progress line
        printed) check accounting and observation."""
        recs = [t for r in self.results for t in r["txs"]]
        accepted_order = [t.tx_hash for t in recs if t.accepted]
        accepted = set(accepted_order)
        self.progress(f"sent {len(recs)} txs ({len(accepted)} accepted); waiting for inclusion")
        if self.after_send is not None:
            self.after_send(accepted_order)
        drain = self._drain(accepted)
        blocks = self.observer.stop()
        last_poll = self.observer.last_poll_s
        # receipts: every accepted tx, and every transport-failed one the node did not know (it may
        # have been included after all)
        retry = {t.tx_hash for t in recs if not t.accepted and str(t.error).startswith("transport")}
        want = [t.tx_hash for t in recs if t.accepted or t.tx_hash in retry]
        with Rpc(self.url) as rpc:
            receipts = _fetch_receipts(rpc, want)
            unseen = _fetch_unseen_blocks(rpc, receipts, blocks, last_poll)
        txs = _tx_records(recs, receipts, retry)
        blocks.sort(key=lambda b: b.number)
        check_receipts(txs)
        chain = chain_record(self.chain_info, self.url, self.cid, self.rates, blocks)
        run_block_nums = {t.block_number for t in txs if t.block_number is not None}
        metrics = self._metrics(txs, blocks, run_block_nums, len(unseen), drain)
        result = LoadResult(
            asdict(self.cfg),
            chain,
            txs,
            blocks,
            metrics,
            [{k: v for k, v in r.items() if k not in ("txs", "request_rtts_s")} for r in self.results],
        )
        self.progress(_line(metrics))
        self._check(txs, run_block_nums, unseen)
        return result

    def _drain(self, accepted: set[str]) -> dict[str, Any]:
        """Wait until the observer has seen every accepted tx, it failed, or the drain timeout passed;
        a progress line every 2 s. The ``drain_*`` metrics."""
        drain_timeout, basis = drain_timeout_choice(
            self.cfg.drain_timeout_s, len(accepted), self.tx_gas_limit, self.rates
        )
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
        return {"drain_timeout_s": drain_timeout, "drain_timeout_basis": basis, "drain_s": drain_s}

    def _metrics(
        self,
        txs: list[TxObs],
        blocks: list[BlockObs],
        run_block_nums: set[int],
        n_unseen: int,
        drain: dict[str, Any],
    ) -> dict[str, Any]:
        """:func:`~harness.chain.metrics.summarize` plus the observer's, the send phase's, the
        requests', the drain's and (open loop) the schedule's figures."""
        cfg = self.cfg
        metrics = summarize(txs, blocks)
        uncert = [b.seen_uncertainty_s for b in blocks if b.number in run_block_nums and b.prev_poll_s]
        metrics.update(
            {
                "blocks_unseen_by_observer": n_unseen,
                "observer_errors": len(self.observer.errors),
                "observer_failure": self.observer.failure,
                "observer_polls": self.observer.polls,
                "observation": self.observer.observation(run_block_nums),
                "inclusion_uncertainty_max_s": max(uncert) if uncert else None,
                "send_rate_tps": _send_rate(self.results),
                "send_window_s": _send_window(self.results),
                "send_phase_s": self.send_phase_s,
                "transport_errors": sum(r.get("transport_errors", 0) for r in self.results),
                "transport": cfg.transport,
                "request_latency": request_latency(self.results),
                "swap_gas_limit": self.tx_gas_limit,  # (historical name) the gas limit of every tx
                "gas_limit_per_tx": self.tx_gas_limit,
                **drain,
            }
        )
        if cfg.loop == "open":
            n_recs = sum(len(r["txs"]) for r in self.results)
            metrics.update(
                {
                    "open_loop_target_tps": cfg.target_tps,
                    "open_loop_max_lag_s": max(r["max_lag_s"] for r in self.results),
                    "open_loop_mean_lag_s": sum(r["mean_lag_s"] * len(r["txs"]) for r in self.results)
                    / max(1, n_recs),
                    "open_loop_late_txs": sum(r["late_txs"] for r in self.results),
                    "open_loop_late_threshold_s": LATE_S,
                }
            )
        return metrics

    def _check(self, txs: list[TxObs], run_block_nums: set[int], unseen: list[int]) -> None:
        """No accepted tx missing (``require_no_missing``); the observer did not fail, miss a run block
        or see one too late (``strict_observation``)."""
        if self.require_no_missing:
            check_no_missing(accounting(txs))
        if self.strict_observation:
            self.observer.check(self.cfg.max_inclusion_uncertainty_s, run_block_nums)
            if unseen:
                raise ObservationError(
                    f"{len(unseen)} block(s) holding run txs were never seen by the observer "
                    f"(inclusion time unknown): {unseen[:10]}"
                )

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


# -- finish's steps that need no state of the run ---------------------------------------------------------
def _fetch_receipts(rpc: Rpc, want: list[str]) -> dict[str, dict[str, Any]]:
    """The receipts the node has for ``want`` (500 a batch); each must name its own tx."""
    receipts: dict[str, dict[str, Any]] = {}
    for i in range(0, len(want), 500):
        chunk = want[i : i + 500]
        for h, rc in zip(
            chunk, rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk]), strict=False
        ):
            if rc is not None:
                if rc.get("transactionHash", h).lower() != h.lower():
                    raise RuntimeError(f"receipt for {h} names {rc.get('transactionHash')}")
                receipts[h] = rc
    return receipts


def _fetch_unseen_blocks(
    rpc: Rpc, receipts: dict[str, dict[str, Any]], blocks: list[BlockObs], last_poll: float | None
) -> list[int]:
    """Append to ``blocks`` every block holding a receipt that the observer never saw (fetched now;
    its time is unknown; ``prev_poll_s`` = ``last_poll``, the observer's last poll); their numbers,
    ascending."""
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
                via="after-run",
            )
        )
    return unseen


def _tx_records(recs: list[TxObs], receipts: dict[str, dict[str, Any]], retry: set[str]) -> list[TxObs]:
    """Each sent tx's record with its receipt's fields; a transport-failed tx (``retry``) that has a
    receipt is marked accepted ("included after all")."""
    txs = []
    for t in recs:
        rc = receipts.get(t.tx_hash)
        accepted, error = bool(t.accepted), t.error
        if t.tx_hash in retry and rc is not None:
            accepted, error = True, f"{t.error}; included after all (receipt found)"
        txs.append(
            replace(
                t,
                accepted=accepted,
                error=error,
                block_number=to_int(rc["blockNumber"]) if rc else None,
                status=to_int(rc["status"]) if rc else None,
                gas_used=to_int(rc["gasUsed"]) if rc else None,
            )
        )
    return txs


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
    ws_url: str | None = None,
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
    with the accepted hashes (send order) before the drain (fault injection in tests). ``ws_url``: where
    the observer subscribes to ``newHeads`` (default: ``url``'s host and port over ws://); which mode it
    used, why it fell back and its resolution are in ``metrics['observation']``.
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
        ws_url,
    ).run()


