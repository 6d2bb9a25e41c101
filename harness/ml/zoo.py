"""The model zoo: configurations, grids, and an on-disk cache that trains each model once.

A :class:`ModelConfig` fully determines a trained model (data, architecture,
optimiser, stopping rule, seed); its :meth:`ModelConfig.key` is the sha256 of
its canonical JSON. :class:`ModelZoo` stores one entry per key:

- ``<key>.pt``   the state_dict (``torch.save``),
- ``<key>.json`` metadata: the config, the :class:`TrainResult`, and the sha256
  of the ``.pt`` file. It is written last (tmp file + ``os.replace``), so it is
  the commit marker: an entry without a valid JSON, or whose ``.pt`` does not
  match the recorded checksum, is reported with a warning naming the file and
  retrained.

Training happens under a per-key :class:`filelock.FileLock`, so concurrent
processes (pytest-xdist workers) train each model ONCE; the others wait and
load it. :meth:`ModelZoo.get_many` first takes the configs whose lock is free
(non-blocking) and only then waits for the ones another process is training,
and accepts a rotation offset so two workers start at different ends of the
list and train disjoint models in parallel.

Every training, cache hit and corrupted entry is appended to ``zoo-log.jsonl``
in the cache directory (one JSON object per line: event, key, pid, worker,
seconds), which is how a run proves each model was trained once.

Trainers: ``ModelZoo(..., trainer="per-model")`` (the default) trains each
model alone with :func:`harness.ml.training.train` and keys entries by
:meth:`ModelConfig.key`, unchanged. ``trainer="ensemble"`` trains models with
the vectorized trainer of :mod:`harness.ml.ensemble` (groups are formed by
:mod:`harness.ml.executors`); its entries are keyed by :func:`ensemble_key`
(the config key's payload plus the trainer's name and version) and live in
the subdirectory ``trainer-ensemble-v<N>`` of the cache directory, so every
cache derived from ``zoo.cache_dir`` (measures, sweeps) is separate from the
per-model trainer's too.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from torch import nn

from harness.ml import ensemble
from harness.ml.cache_io import CacheCorruptionWarning, JsonCache, _atomic_write, _sha256, log_summary
from harness.ml.data import Dataset
from harness.ml.training import TrainResult, train
from harness.ml.zoo_config import (
    CONFIG_FIELDS,
    DEFAULT_TRAINER,
    DROPOUT_RNG_FORMAT,
    SUITE_TRAINER,
    TRAINERS,
    ZOO_FORMAT,
    Grid,
    ModelConfig,
    ensemble_key,
    trainer_subdir,
)


@dataclass
class TrainedModel:
    """A trained model (in eval mode) with its config and training outcome.

    Losses are mean cross-entropy (nats) on the full split; accuracies in [0, 1].
    """

    model: nn.Module
    config: ModelConfig
    result: TrainResult
    cache_hit: bool
    key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def train_loss(self) -> float:
        return self.result.final_train_loss

    @property
    def test_loss(self) -> float:
        return self.result.final_test_loss

    @property
    def train_acc(self) -> float:
        return self.result.final_train_acc

    @property
    def test_acc(self) -> float:
        return self.result.final_test_acc

    @property
    def converged(self) -> bool:
        return self.result.converged

    def data(self) -> Dataset:
        return self.config.load_data()


class ModelZoo:
    """On-disk cache of trained models keyed by :meth:`ModelConfig.key` (see the module docstring)."""

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        worker: str = "",
        threads: int | None = 1,
        trainer: str = DEFAULT_TRAINER,
    ):
        self.root_dir = Path(cache_dir)
        self.trainer = trainer
        self.cache_dir = self.root_dir / trainer_subdir(trainer)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        (self.cache_dir / "locks").mkdir(exist_ok=True)
        self.worker = worker or os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.threads = threads
        self.trained = 0
        self.hits = 0
        self.corrupted = 0

    # -- paths -------------------------------------------------------------------------------
    def entry_key(self, cfg: ModelConfig) -> str:
        """The key ``cfg``'s entry is stored under by this zoo's trainer."""
        return cfg.key() if self.trainer == DEFAULT_TRAINER else ensemble_key(cfg)

    def weights_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.pt"

    def meta_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def lock(self, key: str) -> FileLock:
        return FileLock(str(self.cache_dir / "locks" / f"{key}.lock"))

    @property
    def log_path(self) -> Path:
        return self.cache_dir / "zoo-log.jsonl"

    def log(self, event: str, key: str, **info: Any) -> None:
        rec = {
            "event": event,
            "key": key,
            "pid": os.getpid(),
            "worker": self.worker,
            "t": time.time(),
            **info,
        }
        line = (json.dumps(rec, sort_keys=True, default=str) + "\n").encode()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write() on O_APPEND: lines from concurrent processes do not interleave
        finally:
            os.close(fd)

    def read_log(self) -> list[dict[str, Any]]:
        if not self.log_path.is_file():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    # -- entries -----------------------------------------------------------------------------
    def _load(self, cfg: ModelConfig, key: str, judge: bool = True) -> TrainedModel | None:
        """Load an entry. Only with ``judge`` (i.e. holding the key's lock) is a bad entry reported and
        deleted: without the lock, a missing/half-written entry may be another process mid-write."""
        meta_p, w_p = self.meta_path(key), self.weights_path(key)
        if not meta_p.exists() and not w_p.exists():
            return None
        if not judge and not meta_p.exists():
            return None  # the metadata is written last: no metadata yet = not committed (or a crashed writer)
        problem = None
        try:
            meta = json.loads(meta_p.read_text())
            blob = w_p.read_bytes()
            if meta.get("weights_sha256") != _sha256(blob):
                problem = f"checksum mismatch for {w_p}"
            elif meta.get("key") != key:
                problem = f"key mismatch in {meta_p}"
            else:
                state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
                model = cfg.build()
                model.load_state_dict(state)
                model.eval()
                return TrainedModel(
                    model, cfg, TrainResult.from_dict(meta["result"]), cache_hit=True, key=key
                )
        except FileNotFoundError as e:
            problem = f"incomplete entry (missing {e.filename})"
        except (json.JSONDecodeError, KeyError, TypeError, RuntimeError, ValueError, EOFError, OSError) as e:
            problem = f"unreadable entry {meta_p} / {w_p}: {type(e).__name__}: {e}"
        if not judge:
            return None  # re-checked (and reported) under the lock
        self.corrupted += 1
        warnings.warn(
            f"model zoo: corrupted cache entry for {cfg.short()} ({problem}); retraining it",
            CacheCorruptionWarning,
            stacklevel=3,
        )
        self.log("corrupt", key, problem=problem)
        for p in (meta_p, w_p):
            p.unlink(missing_ok=True)
        return None

    def _train_and_store(
        self, cfg: ModelConfig, key: str, progress: Callable[[str], None] | None
    ) -> TrainedModel:
        if self.trainer != DEFAULT_TRAINER:
            return self.train_entries([cfg], progress)[0]
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        data = cfg.load_data()
        model = cfg.build(data)

        def on_epoch(epoch: int, loss: float) -> None:
            if progress is not None:
                progress(f"[{self.worker}] {cfg.short()}: epoch {epoch} train CE {loss:.4f}")

        result = train(
            model, data, cfg.train_config(), seed=cfg.seed, progress=on_epoch if progress else None
        )
        return self._store(cfg, key, model, result, progress)

    def train_entries(
        self, cfgs: Sequence[ModelConfig], progress: Callable[[str], None] | None = None
    ) -> list[TrainedModel]:
        """Train ``cfgs`` now and store their entries; the caller holds their locks.

        With the ensemble trainer the configs train as ONE ensemble: they must share data, architecture,
        batch size and optimizer (see :func:`harness.ml.executors.group_configs`); configs with a
        ``time_cap_s`` fall back to the per-model trainer (still stored under their ensemble key, with
        ``trainer`` recorded as "per-model" in the entry's metadata). With the per-model trainer they
        train one by one.
        """
        cfgs = list(cfgs)
        if self.trainer == DEFAULT_TRAINER:
            return [self._train_and_store(c, self.entry_key(c), progress) for c in cfgs]
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        out: list[TrainedModel] = []
        capped = [c for c in cfgs if c.time_cap_s is not None]
        for c in capped:
            data = c.load_data()
            model = c.build(data)
            result = train(model, data, c.train_config(), seed=c.seed)
            out.append(self._store(c, self.entry_key(c), model, result, progress, {"trainer": DEFAULT_TRAINER}))
        group = [c for c in cfgs if c.time_cap_s is None]
        if not group:
            return out
        data = group[0].load_data()
        models = [c.build(data) for c in group]

        def on_check(member: int, epoch: int, loss: float) -> None:
            if progress is not None:
                progress(f"[{self.worker}] {group[member].short()}: epoch {epoch} train CE {loss:.4f}")

        results = ensemble.train_ensemble(
            models,
            data,
            [c.train_config() for c in group],
            [c.seed for c in group],
            progress=on_check if progress else None,
        )
        extra = {
            "trainer": ensemble.TRAINER_NAME,
            "trainer_version": ensemble.TRAINER_VERSION,
            "group_size": len(group),
        }
        for c, m, r in zip(group, models, results, strict=True):
            out.append(self._store(c, self.entry_key(c), m, r, progress, extra))
        order = {id(c): i for i, c in enumerate(cfgs)}
        return sorted(out, key=lambda tm: order[id(tm.config)])

    def _store(
        self,
        cfg: ModelConfig,
        key: str,
        model: nn.Module,
        result: TrainResult,
        progress: Callable[[str], None] | None,
        extra_meta: dict[str, Any] | None = None,
    ) -> TrainedModel:
        model.eval()
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        blob = buf.getvalue()
        _atomic_write(self.weights_path(key), blob)
        meta = {
            "key": key,
            "format": ZOO_FORMAT,
            "config": cfg.canonical(),
            "result": result.as_dict(),
            "weights_sha256": _sha256(blob),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            # the SIMD kernels torch dispatched to: training's float rounding, hence the model, depends on
            # them (the 16 smoke models differ bit for bit between AVX-512 and AVX2 kernels on one machine)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "trained_by": self.worker,
            **(extra_meta or {}),
        }
        _atomic_write(self.meta_path(key), json.dumps(meta, indent=1, sort_keys=True).encode())
        self.trained += 1
        self.log("trained", key, seconds=result.seconds, converged=result.converged, config=cfg.short())
        if progress is not None:
            progress(
                f"[{self.worker}] trained {cfg.short()} in {result.seconds:.1f}s, {result.epochs} epochs, "
                f"train CE {result.final_train_loss:.4g} ({'converged' if result.converged else 'NOT converged'}: "
                f"{result.stop_reason}, target {cfg.target_train_loss:g})"
            )
        return TrainedModel(model, cfg, result, cache_hit=False, key=key)

    def lookup(self, cfg: ModelConfig) -> TrainedModel | None:
        """``cfg``'s committed entry, or None (missing, being written, or bad: :meth:`get` judges those)."""
        return self._load(cfg, self.entry_key(cfg), judge=False)

    def get(
        self, cfg: ModelConfig, progress: Callable[[str], None] | None = None, blocking: bool = True
    ) -> TrainedModel | None:
        """Load ``cfg``'s model from the cache, or train and store it (once across processes).

        With ``blocking=False`` returns None when another process holds the key's lock.
        """
        key = self.entry_key(cfg)
        found = self._load(cfg, key, judge=False)
        if found is not None:
            self.hits += 1
            self.log("hit", key)
            return found
        lock = self.lock(key)
        try:
            lock.acquire(timeout=-1 if blocking else 0)
        except Timeout:
            return None
        try:
            found = self._load(cfg, key)  # someone else may have trained it while we waited
            if found is not None:
                self.hits += 1
                self.log("hit", key)
                return found
            return self._train_and_store(cfg, key, progress)
        finally:
            lock.release()

    def get_many(
        self,
        cfgs: Iterable[ModelConfig],
        progress: Callable[[str], None] | None = None,
        offset: int = 0,
    ) -> list[TrainedModel]:
        """All ``cfgs`` as TrainedModels, in the given order.

        Work order starts at ``offset`` (rotated) so concurrent processes start
        on different models; keys locked by another process are deferred and
        waited for at the end.
        """
        cfgs = list(cfgs)
        n = len(cfgs)
        out: dict[int, TrainedModel] = {}
        order = [(i + offset) % n for i in range(n)] if n else []
        deferred = []
        hits = 0

        def got(i: int, tm: TrainedModel) -> None:
            nonlocal hits
            out[i] = tm
            hits += int(tm.cache_hit)
            if progress is not None and not tm.cache_hit:
                progress(f"[{self.worker}] model {len(out)}/{n} ready (trained now): {cfgs[i].short()}")

        for i in order:
            tm = self.get(cfgs[i], progress=progress, blocking=False)
            if tm is None:
                deferred.append(i)
            else:
                got(i, tm)
        for i in deferred:
            got(i, self.get(cfgs[i], progress=progress, blocking=True))  # type: ignore[arg-type]
        if progress is not None and n:
            progress(f"[{self.worker}] {n}/{n} models ready ({hits} from the cache)")
        return [out[i] for i in range(n)]

    def stats(self) -> dict[str, int]:
        return {"trained": self.trained, "cache_hits": self.hits, "corrupted": self.corrupted}


__all__ = [
    "CONFIG_FIELDS",
    "DEFAULT_TRAINER",
    "SUITE_TRAINER",
    "DROPOUT_RNG_FORMAT",
    "TRAINERS",
    "ZOO_FORMAT",
    "ModelConfig",
    "Grid",
    "ModelZoo",
    "TrainedModel",
    "JsonCache",
    "CacheCorruptionWarning",
    "ensemble_key",
    "log_summary",
    "trainer_subdir",
]
