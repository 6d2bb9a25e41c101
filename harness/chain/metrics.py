"""Pure functions over recorded observations: TPS, GPS, latency, utilization, accounting.

Inputs are plain records (:class:`TxObs`, :class:`BlockObs`) in any order;
every function sorts what it needs. Times are seconds on the local wall
clock (``time.time()``, shared by all processes of one machine); block
timestamps are the block header's whole seconds.

Rules (documented here, applied everywhere):

* **inclusion-observed time** of a tx: the local time at which the observer
  first saw the block that includes it (its newHeads push where the target
  offers one, else fast polling; see observe.py).
* **sustained rate** (TPS, or GPS with gas weights): the steady window runs
  from the first inclusion instant ``t0`` to the second-to-last inclusion
  instant ``t_end``; it counts what was included *after* ``t0`` up to and
  including ``t_end``. The first block is excluded (ramp-up: it holds what
  accumulated before the window opened) and the last one too (ramp-down: a
  partial fill). With only two distinct instants the window is first-to-last;
  with fewer it is undefined (``None``).
* **run rate** (:func:`summarize`'s ``tps_sustained`` / ``gps_sustained``): the
  sustained rate where the steady window holds at least
  ``MIN_STEADY_INSTANTS`` inclusion instants; a shorter run (a burst a fast
  node includes in 1-3 blocks) has no steady state, and its steady window would
  count one block (the second of two: 19 TPS for 1000 transfers included in
  about 1 s), so its rate is the **burst rate** instead: what was included /
  (last inclusion instant − first submit). ``tps_method`` says which; the
  steady-window figure is kept as ``tps_steady_window_rate``.
* **peak TPS**: the highest rate over any interval between two inclusion
  instants at least ``window_s`` apart (sliding; same fencepost as the
  sustained rate) — see :func:`peak_tps` for why not a fixed bin.
* **paper TPS** (arXiv:2506.00500 Table 1): included txs / whole seconds
  between the header timestamps of the first and last block holding a run
  tx, at least 1 s.
* **latency**: inclusion-observed time − submit time (the local time just
  before the HTTP request carrying the tx was sent); percentiles are
  nearest-rank.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class TxObs:
    """One transaction the generator tried to send.

    The one per-tx record of a load run, from the generator instance that sends it to the result: the
    instance fills the submit fields, the controller resolves a transport failure and adds the receipt's
    (:func:`dataclasses.replace`: the record is immutable).

    ``submit_s``: local wall-clock seconds when its request was sent.
    ``accepted``: the node returned a hash (False: rejected at submit, ``error`` says why); None only
    between a request that failed in transit and the controller's lookup (never in a ``LoadResult``).
    ``block_number``/``status``/``gas_used``: from its receipt (None while no receipt).
    ``gas_limit``: the gas limit the tx was signed with (None: not recorded).
    """

    tx_hash: str
    instance: int
    submit_s: float
    accepted: bool | None
    error: str | None = None
    block_number: int | None = None
    status: int | None = None
    gas_used: int | None = None
    gas_limit: int | None = None


@dataclass(frozen=True)
class BlockObs:
    """A block as the observer saw it. ``seen_s``: local time first seen; ``timestamp``: header seconds.

    ``prev_poll_s``: local time of the observer's previous successful poll, which did not see the block
    yet, so the block appeared in ``(prev_poll_s, seen_s]`` (None: not recorded, e.g. fetched later).
    ``via``: how it was seen: ``newHeads`` (pushed; ``prev_poll_s`` = push time - the connection's round
    trip; if the observer's heartbeat read it before its push: that heartbeat and the one before),
    ``gap`` (no push carried it in time: fetched by number; ``late-push``: its push came later), ``poll``,
    ``after-run`` (fetched after the run: time unknown); None: not recorded.
    """

    number: int
    seen_s: float
    timestamp: int
    gas_used: int
    gas_limit: int
    tx_hashes: tuple[str, ...] = field(default_factory=tuple)
    prev_poll_s: float | None = None
    via: str | None = None

    @property
    def seen_uncertainty_s(self) -> float | None:
        """How late ``seen_s`` can be: ``seen_s - prev_poll_s`` (the observation's resolution), s."""
        return None if self.prev_poll_s is None else self.seen_s - self.prev_poll_s

    @property
    def tx_count(self) -> int:
        return len(self.tx_hashes)


class MissingTransactionsError(AssertionError):
    """Accepted transactions that never got a receipt. The message lists their hashes."""


class ReceiptError(AssertionError):
    """A receipt that cannot be right: status not 0/1, gas used not in (0, the tx's gas limit]."""


def receipt_problems(txs: Iterable[TxObs]) -> list[str]:
    """Every receipt checked: status 0 or 1, ``0 < gas_used <= gas_limit`` (when the limit is known),
    a block number. One line per bad tx; txs without a receipt are the accounting's business."""
    bad = []
    for tx in txs:
        if tx.status is None and tx.block_number is None and tx.gas_used is None:
            continue  # no receipt
        if tx.status not in (0, 1):
            bad.append(f"{tx.tx_hash}: status {tx.status!r} (must be 0 or 1)")
        elif tx.block_number is None:
            bad.append(f"{tx.tx_hash}: receipt without a block number")
        elif tx.gas_used is None or tx.gas_used <= 0:
            bad.append(f"{tx.tx_hash}: gas used {tx.gas_used!r} (must be > 0)")
        elif tx.gas_limit is not None and tx.gas_used > tx.gas_limit:
            bad.append(f"{tx.tx_hash}: gas used {tx.gas_used} > its gas limit {tx.gas_limit}")
    return bad


def check_receipts(txs: Iterable[TxObs]) -> None:
    """Raise :class:`ReceiptError` listing the bad receipts (see :func:`receipt_problems`)."""
    bad = receipt_problems(txs)
    if bad:
        more = f" (+{len(bad) - 20} more)" if len(bad) > 20 else ""
        raise ReceiptError(f"{len(bad)} invalid receipt(s): " + "; ".join(bad[:20]) + more)


@dataclass(frozen=True)
class Accounting:
    """Where every tx went. ``sent`` = all attempts = rejected + included + failed + missing."""

    sent: int
    rejected: int
    included: int
    failed: int
    missing: int
    missing_hashes: tuple[str, ...] = ()
    rejected_errors: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        d = asdict(self)
        d["missing_hashes"] = list(self.missing_hashes)
        d["rejected_errors"] = sorted(set(self.rejected_errors))[:20]
        return d


def accounting(txs: Iterable[TxObs]) -> Accounting:
    """Classify every tx: rejected at submit, included (status 1), failed (status 0), missing (no receipt)."""
    sent = rejected = included = failed = 0
    missing: list[str] = []
    errors: list[str] = []
    for tx in txs:
        sent += 1
        if not tx.accepted:
            rejected += 1
            errors.append(tx.error or "unknown")
        elif tx.status is None:
            missing.append(tx.tx_hash)
        elif tx.status == 1:
            included += 1
        elif tx.status == 0:
            failed += 1
        else:
            raise ValueError(f"tx {tx.tx_hash}: receipt status must be 0 or 1, got {tx.status!r}")
    # sorted: the record does not depend on the order the txs were observed in
    return Accounting(sent, rejected, included, failed, len(missing), tuple(sorted(missing)), tuple(errors))


def check_no_missing(acc: Accounting) -> None:
    """Raise :class:`MissingTransactionsError` listing the hashes if any accepted tx has no receipt."""
    if acc.missing:
        shown = ", ".join(acc.missing_hashes[:50])
        more = f" (+{acc.missing - 50} more)" if acc.missing > 50 else ""
        raise MissingTransactionsError(
            f"{acc.missing} of {acc.sent} transactions were accepted by the node but never included: "
            f"{shown}{more}. (A tx rejected at submit strands the later nonces of its account.)"
        )


def inclusion_times(txs: Iterable[TxObs], blocks: Iterable[BlockObs]) -> dict[str, float]:
    """tx hash -> inclusion-observed time, for txs with a receipt whose block was observed."""
    seen = {b.number: b.seen_s for b in blocks}
    out: dict[str, float] = {}
    for tx in txs:
        if tx.block_number is not None and tx.block_number in seen:
            out[tx.tx_hash] = seen[tx.block_number]
    return out


def sustained_rate(
    times: Sequence[float], weights: Sequence[float] | None = None, trim_ramp_down: bool = True
) -> float | None:
    """Sustained rate (per second) over the steady window (module docstring). None if undefined.

    ``times``: inclusion-observed times (any order, ties allowed); ``weights``:
    per-time amounts (1 each for TPS, gas used for GPS).
    """
    if weights is None:
        weights = [1.0] * len(times)
    if len(weights) != len(times):
        raise ValueError(f"{len(times)} times but {len(weights)} weights")
    for t in times:
        if not math.isfinite(t):
            raise ValueError(f"inclusion time must be finite, got {t}")
    window = steady_window(times, trim_ramp_down)
    if window is None:
        return None
    t0, t_end = window
    amount = sum(w for t, w in zip(times, weights, strict=False) if t0 < t <= t_end)
    return amount / (t_end - t0)


def steady_window(times: Sequence[float], trim_ramp_down: bool = True) -> tuple[float, float] | None:
    """(t0, t_end) of the sustained rate's steady window: the first inclusion instant to the last one,
    or to the second-last with ``trim_ramp_down`` and at least 3 instants (module docstring). None with
    fewer than 2 distinct instants."""
    instants = sorted(set(times))
    if len(instants) < 2:
        return None
    return instants[0], instants[-2] if (trim_ramp_down and len(instants) >= 3) else instants[-1]


#: inclusion instants the steady window must hold for a run's rate to be its sustained rate (module docstring)
MIN_STEADY_INSTANTS = 3


def burst_rate(times: Sequence[float], first_submit: float | None,
               weights: Sequence[float] | None = None) -> float | None:
    """What was included / (last inclusion instant - first submit): the rate of a run too short for a
    steady window. None without inclusions, a submit time, or a positive span."""
    if not times or first_submit is None or max(times) <= first_submit:
        return None
    amount = len(times) if weights is None else sum(weights)
    return amount / (max(times) - first_submit)


def sustained_tps(times: Sequence[float], trim_ramp_down: bool = True) -> float | None:
    """Sustained transactions per second over the steady window."""
    return sustained_rate(times, None, trim_ramp_down)


def peak_tps(times: Sequence[float], window_s: float = 1.0) -> tuple[float, float] | tuple[None, None]:
    """(peak TPS, start of its interval) — the highest rate over any interval of at least ``window_s``.

    Intervals run between two inclusion instants ``t_j < t_i`` with ``t_i - t_j >= window_s`` (every
    such pair); the rate counts inclusions in ``(t_j, t_i]`` (the same fencepost as the sustained rate)
    and divides by ``t_i - t_j``. Inclusions arrive in per-block bursts, so a fixed half-open
    ``[t, t + window_s)`` window would catch two blocks seen a hair under ``window_s`` apart and double
    the "peak". Every pair, not only the shortest one ending at each ``t_i``: the sustained window is
    itself such an interval whenever it is ``window_s`` or longer, so the peak is never below the
    sustained rate (with shortest-only intervals a burst just inside ``window_s`` of every later
    instant was never counted). Ties go to the earliest interval. (None, None) when no two instants
    are ``window_s`` apart.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    import numpy as np

    ts = sorted(times)
    instants = sorted(set(ts))
    inst = np.asarray(instants, dtype=float)
    cum = np.asarray([bisect_right(ts, t) for t in instants], dtype=float)  # inclusions at or before
    best: float | None = None
    best_t: float | None = None
    for i in range(1, len(instants)):
        span = inst[i] - inst[:i]
        ok = span >= window_s
        if not ok.any():
            continue
        rates = np.where(ok, (cum[i] - cum[:i]) / np.where(ok, span, 1.0), -1.0)
        j = int(np.argmax(rates))
        if best is None or rates[j] > best:
            best, best_t = float(rates[j]), instants[j]
    if best is None:
        return None, None
    return best, best_t


def paper_tps(n_included: int, block_timestamps: Sequence[int]) -> float | None:
    """The paper's formula: txs / whole seconds between first and last including block (>= 1 s)."""
    if n_included < 0:
        raise ValueError("n_included must be >= 0")
    if not block_timestamps:
        return None
    span = max(block_timestamps) - min(block_timestamps)
    return n_included / max(1, span)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]); None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    vs = sorted(values)
    if not vs:
        return None
    rank = max(1, math.ceil(q / 100 * len(vs)))
    return vs[rank - 1]


def latency_stats(latencies_s: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/max/mean of latencies in seconds (None when empty), plus the count."""
    n = len(latencies_s)
    return {
        "n": n,
        "latency_p50_s": percentile(latencies_s, 50),
        "latency_p90_s": percentile(latencies_s, 90),
        "latency_p99_s": percentile(latencies_s, 99),
        "latency_max_s": max(latencies_s) if n else None,
        "latency_mean_s": (sum(latencies_s) / n) if n else None,
    }


def utilization(blocks: Iterable[BlockObs], run_hashes: set[str] | None = None) -> list[dict]:
    """Per block, by number: gas used / gas limit, txs, run txs, seen time (s after the first block seen)."""
    bs = sorted(blocks, key=lambda b: b.number)
    if not bs:
        return []
    t0 = min(b.seen_s for b in bs)
    rows = []
    for b in bs:
        rows.append(
            {
                "number": b.number,
                "seen_s": b.seen_s,
                "t_rel_s": b.seen_s - t0,
                "timestamp": b.timestamp,
                "gas_used": b.gas_used,
                "gas_limit": b.gas_limit,
                "utilization": (b.gas_used / b.gas_limit) if b.gas_limit else None,
                "tx_count": b.tx_count,
                "run_tx_count": (
                    sum(1 for h in b.tx_hashes if h in run_hashes) if run_hashes is not None else b.tx_count
                ),
            }
        )
    return rows


def tps_series(
    times: Sequence[float], bin_s: float = 1.0, origin: float | None = None
) -> list[tuple[float, float]]:
    """(bin start relative to ``origin``, TPS in that bin) for plotting; empty bins included."""
    if bin_s <= 0:
        raise ValueError("bin_s must be > 0")
    if not times:
        return []
    o = min(times) if origin is None else origin
    nbins = int(math.floor((max(times) - o) / bin_s)) + 1
    counts = [0] * max(nbins, 1)
    for t in times:
        k = int(math.floor((t - o) / bin_s))
        if 0 <= k < len(counts):
            counts[k] += 1
    return [(k * bin_s, c / bin_s) for k, c in enumerate(counts)]


def summarize(txs: Sequence[TxObs], blocks: Sequence[BlockObs], peak_window_s: float = 1.0) -> dict:
    """All the numbers of one run: accounting, TPS (sustained/peak/paper), GPS, latency, blocks."""
    acc = accounting(txs)
    incl = inclusion_times(txs, blocks)
    ok = [tx for tx in txs if tx.accepted and tx.status == 1 and tx.tx_hash in incl]
    times = [incl[tx.tx_hash] for tx in ok]
    gas = [float(tx.gas_used or 0) for tx in ok]
    run_blocks = sorted({tx.block_number for tx in txs if tx.block_number is not None})
    by_num = {b.number: b for b in blocks}
    ts = [by_num[n].timestamp for n in run_blocks if n in by_num]
    peak, peak_at = peak_tps(times, peak_window_s)
    steady = steady_window(times)
    steady_instants = len({t for t in times if steady[0] <= t <= steady[1]}) if steady else 0
    t_first_submit = min((tx.submit_s for tx in txs), default=None)
    lat = [incl[tx.tx_hash] - tx.submit_s for tx in txs if tx.accepted and tx.tx_hash in incl]
    steady_tps, steady_gps = sustained_tps(times), sustained_rate(times, gas)
    if steady is not None and steady_instants >= MIN_STEADY_INSTANTS:
        method, tps, gps = "steady window", steady_tps, steady_gps
    else:
        method = "burst (included / (last inclusion - first submit)): steady window too short"
        tps, gps = burst_rate(times, t_first_submit), burst_rate(times, t_first_submit, gas)
    out = {
        "accounting": acc.as_dict(),
        "tps_sustained": tps,
        "tps_method": method,
        "tps_steady_window_rate": steady_tps,
        "tps_peak": peak,
        "tps_peak_window_s": peak_window_s,
        "tps_steady_window_s": (steady[1] - steady[0]) if steady else None,
        "inclusion_instants": len(set(times)),
        "tps_peak_at_s": (peak_at - t_first_submit)
        if (peak_at is not None and t_first_submit is not None)
        else None,
        "tps_paper_formula": paper_tps(len(ok), ts),
        "gps_sustained": gps,
        "gas_per_tx_mean": (sum(gas) / len(gas)) if gas else None,
        "gas_per_tx_min": min(gas) if gas else None,
        "gas_per_tx_max": max(gas) if gas else None,
        "run_blocks": len(run_blocks),
        "duration_submit_to_last_inclusion_s": (max(times) - t_first_submit)
        if (times and t_first_submit)
        else None,
    }
    out.update(latency_stats(lat))
    return out
