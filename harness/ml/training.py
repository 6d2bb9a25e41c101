"""Train a classifier to a target train cross-entropy (the paper's stopping rule).

The stopping criterion is checked on the FULL train set, in eval mode, every
``check_every`` epochs (and after the last epoch): training stops as soon as
the full-train-set mean cross-entropy is <= ``target_train_loss``. A model is
``converged`` when that holds at the end. ``time_cap_s`` (wall seconds) bounds
one training; a capped model is simply not converged.

Determinism: minibatch order comes from a ``torch.Generator`` seeded with
``seed``; dropout masks (the only other random draws in training) come from
torch's global RNG, which :func:`train` forks and seeds with
:func:`dropout_seed` for the duration of the training, so a model with
dropout is a function of its config alone and the caller's global RNG state is
left untouched. (A model without dropout draws nothing from the global RNG,
so seeding it changes nothing for such models: their cached entries stay
valid.) The caller fixes the thread count (``torch.set_num_threads(1)`` per
worker process — the thread count changes float reduction order).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from harness.ml.data import Dataset

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and stopping rule. ``lr`` per step; ``time_cap_s`` in wall seconds (None: no cap)."""

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 200
    target_train_loss: float = 0.01
    time_cap_s: float | None = None
    check_every: int = 1

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}: expected one of {OPTIMIZERS}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.check_every < 1:
            raise ValueError("batch_size, max_epochs and check_every must be >= 1")
        if self.weight_decay < 0 or self.momentum < 0 or self.target_train_loss <= 0:
            raise ValueError("weight_decay and momentum must be >= 0 and target_train_loss > 0")


@dataclass
class TrainResult:
    """Outcome of one training. Losses: mean cross-entropy (nats); accuracies in [0, 1]; seconds: wall."""

    converged: bool
    epochs: int
    steps: int
    seconds: float
    final_train_loss: float
    final_train_acc: float
    final_test_loss: float
    final_test_acc: float
    epoch_train_losses: list[float] = field(default_factory=list)
    stop_reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainResult:
        return cls(**d)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 8192) -> tuple[float, float]:
    """(mean cross-entropy in nats, accuracy) of ``model`` on (x, y) in eval mode; restores the mode."""
    was_training = model.training
    model.eval()
    try:
        total, correct = 0.0, 0
        for i in range(0, x.shape[0], batch):
            logits = model(x[i : i + batch])
            total += float(F.cross_entropy(logits, y[i : i + batch], reduction="sum"))
            correct += int((logits.argmax(1) == y[i : i + batch]).sum())
        n = x.shape[0]
        return total / n, correct / n
    finally:
        model.train(was_training)


def dropout_seed(seed: int) -> int:
    """Seed of the global torch RNG during :func:`train` (dropout masks): distinct from the init seed's stream."""
    return (int(seed) * 1_000_003 + 7919) % (2**63)


def train(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data`` with ``cfg``; returns a :class:`TrainResult`.

    ``progress(epoch, full_train_loss)`` is called at every stopping-rule check.
    The global torch RNG is forked and seeded with :func:`dropout_seed` (``seed``) while training.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(dropout_seed(seed))
        return _train(model, data, cfg, seed, progress)


def _train(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    seed: int,
    progress: Callable[[int, float], None] | None,
) -> TrainResult:
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    x, y = data.x_train, data.y_train
    n = x.shape[0]
    t0 = time.perf_counter()
    steps = 0
    epoch_losses: list[float] = []
    full_loss = math.inf
    stop_reason = "max_epochs"
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        running, batches = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            running += float(loss.detach())
            batches += 1
            steps += 1
        epoch_losses.append(running / max(batches, 1))
        if not math.isfinite(epoch_losses[-1]):
            stop_reason = "diverged"
            break
        last = epoch == cfg.max_epochs
        capped = cfg.time_cap_s is not None and time.perf_counter() - t0 > cfg.time_cap_s
        if epoch % cfg.check_every == 0 or last or capped:
            full_loss, _ = evaluate(model, x, y)
            if progress is not None:
                progress(epoch, full_loss)
            if full_loss <= cfg.target_train_loss:
                stop_reason = "target_reached"
                break
        if capped:
            stop_reason = "time_cap"
            break
    seconds = time.perf_counter() - t0
    model.eval()
    train_loss, train_acc = evaluate(model, x, y)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    return TrainResult(
        converged=bool(math.isfinite(train_loss) and train_loss <= cfg.target_train_loss),
        epochs=epoch,
        steps=steps,
        seconds=seconds,
        final_train_loss=train_loss,
        final_train_acc=train_acc,
        final_test_loss=test_loss,
        final_test_acc=test_acc,
        epoch_train_losses=epoch_losses,
        stop_reason=stop_reason,
    )
