"""Zoo configurations: :class:`ModelConfig` (one trained model, keyed by the sha256 of its canonical JSON),
:class:`Grid` (a named set of configs), the cache-key helpers (:func:`ensemble_key`, :func:`trainer_subdir`)
and the format versions that are part of every key. The cache itself is :mod:`harness.ml.zoo`."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from torch import nn

from harness.ml import ensemble
from harness.ml.data import Dataset, load_dataset
from harness.ml.models import build_model
from harness.ml.training import TrainConfig

ZOO_FORMAT = 1  # bump when the entry layout or training semantics change (changes every key)
DROPOUT_RNG_FORMAT = (
    1  # dropout masks seeded from the config seed (training.dropout_seed); dropout>0 keys only
)


TRAINERS = ("per-model", ensemble.TRAINER_NAME)
#: ``ModelZoo``'s default: each model alone, entries keyed by :meth:`ModelConfig.key`
DEFAULT_TRAINER = "per-model"
#: what the claims suites train with unless ``--zoo-trainer`` says otherwise (fixtures.ml)
SUITE_TRAINER = ensemble.TRAINER_NAME


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
