"""Per-stage durations of the node's own request path (intake), kept for ``rollup_status.intakeTimings``.

So that a latency figure measured through the node can be explained from the node itself: for every
accepted request, how long it waited for the dispatch pool, decoded and recovered senders, waited for the
sequencer lock, waited for the WAL's group commit (and how long each fdatasync took), and waited for the
engine. A bounded ring of the most recent samples per stage (thread-safe, O(1) per sample); the summary
gives count, p50, p90, p99 and max (durations in milliseconds, sizes as counts).
"""

from __future__ import annotations

import threading
from collections import deque

#: samples kept per stage (the most recent)
KEEP = 20_000


class StageClock:
    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._samples: dict[str, deque[float]] = {}
        self._counts: dict[str, int] = {}
        self._units: dict[str, str] = {}
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float) -> None:
        """A duration (reported in ms)."""
        self._add(stage, seconds * 1e3, "ms")

    def count(self, stage: str, n: float) -> None:
        """A size (e.g. records per group commit), reported as is."""
        self._add(stage, n, "n")

    def _add(self, stage: str, value: float, unit: str) -> None:
        with self._lock:
            self._units[stage] = unit
            d = self._samples.get(stage)
            if d is None:
                d = self._samples[stage] = deque(maxlen=self._keep)
            d.append(value)
            self._counts[stage] = self._counts.get(stage, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()
            self._counts.clear()

    def summary(self) -> dict[str, dict[str, float | int]]:
        with self._lock:
            snap = {k: sorted(v) for k, v in self._samples.items()}
            counts, units = dict(self._counts), dict(self._units)
        out: dict[str, dict[str, float | int]] = {}
        for stage, xs in snap.items():
            if not xs:
                continue

            def q(p: float, xs: list[float] = xs) -> float:
                return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3)

            sfx = "_ms" if units[stage] == "ms" else ""
            out[stage] = {"count": counts[stage], "window": len(xs), f"p50{sfx}": q(0.5), f"p90{sfx}": q(0.9),
                          f"p99{sfx}": q(0.99), f"max{sfx}": round(xs[-1], 3)}
        return out
