"""The run's result (:class:`LoadResult`, its ``chain`` record: :func:`chain_record`) and summaries
of the instances' records: per-request reply times (:func:`request_latency`), the send window and
rate, and the progress lines (:func:`stderr_progress`)."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from harness.chain.loadgen.config import ProfileMismatchError
from harness.chain.metrics import BlockObs, TxObs


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
    clock: str = "time.time() wall clock of one machine (submit: before the HTTP request; inclusion: the block's newHeads push, or the first poll seeing it: metrics.observation)"

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


def chain_record(
    chain_info: dict[str, Any], url: str, cid: int, rates: dict[str, Any], blocks: list[BlockObs]
) -> dict[str, Any]:
    """``chain`` of the result: url, chain id, the profile (or 'external' + observed), observed values;
    on a profiled chain every observed block must carry the profile's gas limit."""
    info = dict(chain_info)
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
        "rates_used_for_drain": rates,
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
    info.update({"url": url, "chain_id": cid, "profile": profile, "observed": observed})
    return info


def _noop(msg: str) -> None:
    pass



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
    starts = [min(t.submit_s for t in r["txs"]) for r in rs]
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
        + _observation_note(m.get("observation"))
        + "".join(f"; {meth} reply p50 {v['p50_s'] * 1e3:.1f} ms p99 {v['p99_s'] * 1e3:.1f} ms ({m.get('transport')})"
                  for meth, v in (m.get("request_latency") or {}).items())
    )


def _observation_note(o: dict[str, Any] | None) -> str:
    if not o:
        return ""
    res = (f"resolution p50 {o['resolution_s'] * 1e3:.0f} ms max {o['resolution_max_s'] * 1e3:.0f} ms"
           if o.get("resolution_s") is not None else "resolution unknown")
    note = f"; observed by {o['mode']} ({res}, {o['gaps']} gap(s))"
    return note + (f" [fallback: {o['fallback_reason']}]" if o.get("fallback_reason") else "")


def stderr_progress(quiet: bool = False) -> Callable[[str], None]:
    """A progress printer to stderr (no-op when ``quiet`` or the CI env var is set)."""
    if quiet or os.environ.get("CI"):
        return _noop
    return lambda msg: print(f"[loadgen] {msg}", file=sys.stderr, flush=True)
