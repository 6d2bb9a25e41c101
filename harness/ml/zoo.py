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

import hashlib
import io
import itertools
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from torch import nn

from harness.ml import ensemble
from harness.ml.data import Dataset, load_dataset
from harness.ml.models import build_model
from harness.ml.training import TrainConfig, TrainResult, train

ZOO_FORMAT = 1  # bump when the entry layout or training semantics change (changes every key)
DROPOUT_RNG_FORMAT = (
    1  # dropout masks seeded from the config seed (training.dropout_seed); dropout>0 keys only
)


TRAINERS = ("per-model", ensemble.TRAINER_NAME)
DEFAULT_TRAINER = "per-model"


class CacheCorruptionWarning(UserWarning):
    """A zoo cache entry failed its checksum or could not be parsed; it is retrained."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything that determines one trained model. Units: lr per step, time_cap_s wall seconds."""

    dataset: str = "mnist1d"
    arch: str = "mlp"
    width: int = 64
    depth: int = 2
    dropout: float = 0.0
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 200
    target_train_loss: float = 0.01
    time_cap_s: float | None = None
    check_every: int = 1
    label_noise: float = 0.0
    noise_seed: int = 0
    data_seed: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        # Validate eagerly: a bad grid fails at collection, not after an hour of training.
        self.train_config()
        if self.dataset not in ("mnist1d", "digits"):
            raise ValueError(f"ModelConfig.dataset: unknown dataset {self.dataset!r}")
        if self.arch not in ("mlp", "cnn1d"):
            raise ValueError(f"ModelConfig.arch: unknown arch {self.arch!r}")

    def canonical(self) -> dict[str, Any]:
        """The config as a JSON-able dict with normalised types (lr=1 and lr=1.0 give the same key)."""
        d = asdict(self)
        for k in _FLOAT_FIELDS:
            if d[k] is not None:
                d[k] = float(d[k])
        for k in _INT_FIELDS:
            d[k] = int(d[k])
        return d

    def key(self) -> str:
        """Stable sha256 (hex) of the canonical JSON of this config plus the zoo format version.

        A config with dropout also carries ``train_rng`` = :data:`DROPOUT_RNG_FORMAT`: its dropout masks
        come from the global torch RNG, which training seeds from the config seed only since that format
        (before, the masks depended on whatever state the process's global RNG was in). Configs without
        dropout draw nothing from the global RNG, train identically, and keep their keys.
        """
        return _digest(self.key_body())

    def key_body(self) -> dict[str, Any]:
        """The JSON object :meth:`key` hashes (format version, canonical config, dropout RNG format)."""
        body: dict[str, Any] = {"format": ZOO_FORMAT, **self.canonical()}
        if self.dropout > 0:
            body["train_rng"] = DROPOUT_RNG_FORMAT
        return body

    def short(self) -> str:
        return (
            f"{self.arch} w{self.width} d{self.depth} {self.optimizer} lr{self.lr:g} wd{self.weight_decay:g} "
            f"b{self.batch_size} s{self.seed}"
        )

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            optimizer=self.optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            target_train_loss=self.target_train_loss,
            time_cap_s=self.time_cap_s,
            check_every=self.check_every,
        )

    def load_data(self) -> Dataset:
        return load_dataset(
            self.dataset, seed=self.data_seed, label_noise=self.label_noise, noise_seed=self.noise_seed
        )

    def build(self, data: Dataset | None = None) -> nn.Module:
        data = data if data is not None else self.load_data()
        return build_model(
            self.arch, data.in_features, data.n_classes, self.width, self.depth, self.dropout, self.seed
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s) {unknown}; known: {sorted(f.name for f in fields(cls))}"
            )
        return cls(**d)


def _digest(body: dict[str, Any]) -> str:
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def ensemble_key(cfg: ModelConfig) -> str:
    """Cache key of ``cfg`` trained by the ensemble trainer: :meth:`ModelConfig.key`'s payload plus
    ``trainer`` and ``trainer_version`` (:data:`harness.ml.ensemble.TRAINER_VERSION`)."""
    return _digest(
        {**cfg.key_body(), "trainer": ensemble.TRAINER_NAME, "trainer_version": ensemble.TRAINER_VERSION}
    )


def trainer_subdir(trainer: str) -> str:
    """Subdirectory of the cache root holding ``trainer``'s entries ("" for the per-model trainer)."""
    if trainer not in TRAINERS:
        raise ValueError(f"unknown zoo trainer {trainer!r}: expected one of {TRAINERS}")
    return "" if trainer == DEFAULT_TRAINER else f"trainer-{trainer}-v{ensemble.TRAINER_VERSION}"


CONFIG_FIELDS = tuple(f.name for f in fields(ModelConfig))
_FLOAT_FIELDS = (
    "dropout",
    "lr",
    "momentum",
    "weight_decay",
    "target_train_loss",
    "time_cap_s",
    "label_noise",
)
_INT_FIELDS = ("width", "depth", "batch_size", "max_epochs", "check_every", "noise_seed", "data_seed", "seed")


class Grid:
    """A cartesian product of hyperparameter ``axes`` over a ``base`` config.

    Validated on construction: every axis is a known ModelConfig field with a
    non-empty list of distinct values, no field is both an axis and in
    ``base``, and the product has no duplicate configs.
    """

    def __init__(self, axes: dict[str, Sequence[Any]], base: dict[str, Any] | None = None):
        base = dict(base or {})
        if not isinstance(axes, dict) or not axes:
            raise ValueError("Grid needs at least one axis (a dict field -> list of values)")
        unknown = sorted((set(axes) | set(base)) - set(CONFIG_FIELDS))
        if unknown:
            raise ValueError(
                f"Grid: unknown ModelConfig field(s) {unknown}; known fields: {list(CONFIG_FIELDS)}"
            )
        both = sorted(set(axes) & set(base))
        if both:
            raise ValueError(f"Grid: field(s) {both} are both an axis and in base")
        for name, values in axes.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise ValueError(f"Grid axis {name!r} must be a list of values, got {values!r}")
            if len(values) == 0:
                raise ValueError(f"Grid axis {name!r} is empty")
            if len(set(map(repr, values))) != len(values):
                raise ValueError(f"Grid axis {name!r} has duplicate values: {list(values)}")
        self.axes = {k: list(v) for k, v in axes.items()}
        self.base = base
        cfgs = self.configs()
        keys = [c.key() for c in cfgs]
        if len(set(keys)) != len(keys):
            raise ValueError("Grid produces duplicate configs")

    def configs(self) -> list[ModelConfig]:
        """All configs, in a stable order (axes in insertion order, last axis fastest)."""
        names = list(self.axes)
        out = []
        for values in itertools.product(*(self.axes[n] for n in names)):
            out.append(ModelConfig.from_dict({**self.base, **dict(zip(names, values, strict=True))}))
        return out

    def __len__(self) -> int:
        n = 1
        for v in self.axes.values():
            n *= len(v)
        return n


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


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


__all__ = [
    "ModelConfig",
    "Grid",
    "ModelZoo",
    "TrainedModel",
    "JsonCache",
    "CacheCorruptionWarning",
    "log_summary",
]
