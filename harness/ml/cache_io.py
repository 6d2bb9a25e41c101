"""Cache file helpers shared by the zoo and the measure caches: atomic writes, checksums, the keyed
:class:`JsonCache` (file-locked across processes), the corruption warning and the zoo-log summary."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout


class CacheCorruptionWarning(UserWarning):
    """A zoo cache entry failed its checksum or could not be parsed; it is retrained."""


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class JsonCache:
    """A small keyed JSON cache (e.g. measures of a model), shared across processes by file locks."""

    def __init__(self, cache_dir: str | os.PathLike, namespace: str):
        self.dir = Path(cache_dir) / namespace
        self.dir.mkdir(parents=True, exist_ok=True)

    def get_or_compute(
        self, key: str, compute: Callable[[], dict[str, Any]], blocking: bool = True
    ) -> tuple[dict[str, Any] | None, bool]:
        """(value, cache_hit). A corrupt entry is warned about (naming the file) and recomputed.

        With ``blocking=False`` returns (None, False) when another process is computing ``key``.
        """
        path = self.dir / f"{key}.json"

        def read(judge: bool) -> dict[str, Any] | None:
            if not path.exists():
                return None
            try:
                return json.loads(path.read_text())["value"]
            except (json.JSONDecodeError, KeyError, OSError) as e:
                if not judge:
                    return None  # reported and removed only under the lock
                warnings.warn(
                    f"corrupted cache entry {path} ({e}); recomputing", CacheCorruptionWarning, stacklevel=3
                )
                path.unlink(missing_ok=True)
                return None

        value = read(judge=False)
        if value is not None:
            return value, True
        lock = FileLock(str(self.dir / f"{key}.lock"))
        try:
            lock.acquire(timeout=-1 if blocking else 0)
        except Timeout:
            return None, False
        try:
            value = read(judge=True)
            if value is not None:
                return value, True
            value = compute()
            _atomic_write(
                path, json.dumps({"key": key, "value": value}, sort_keys=True, default=float).encode()
            )
            return value, False
        finally:
            lock.release()


def log_summary(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Count zoo-log events: trainings, hits, corruptions, and keys trained more than once
    without a corruption in between (which would break the train-once guarantee)."""
    trained: dict[str, int] = {}
    twice: list[str] = []
    counts = {"trained": 0, "hit": 0, "corrupt": 0}
    for e in events:
        ev, key = e.get("event"), e.get("key", "")
        if ev in counts:
            counts[ev] += 1
        if ev == "trained":
            trained[key] = trained.get(key, 0) + 1
            if trained[key] > 1:
                twice.append(key)
        elif ev == "corrupt":
            trained[key] = 0
    return {**counts, "distinct_trained": len(trained), "trained_more_than_once": sorted(set(twice))}
