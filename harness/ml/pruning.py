"""Prunability (paper A): the smallest fraction of weights global magnitude pruning can keep.

Definition used here (CLAIMS.md): over the prunable weights only (Linear/Conv
``weight`` tensors; biases and norm parameters are neither pruned nor
counted), keep the k largest |w| across all layers and zero the rest, with no
retraining. With L = mean train cross-entropy of the unpruned model (full
train set, eval mode, no grad), prunability is k*/N where k* is the smallest
k with ``loss(k) <= (1 + alpha) * L``.

Implementation: |w| is sorted ONCE (stable sort on the flattened weights, so
ties are broken by position: the earlier weight in module order is removed
first). A probe writes the masked weights into the live parameters and the
originals are restored afterwards (no deepcopy per probe). The search is an
exact bisection on the integer k maintaining ``loss(lo) > thr >= loss(hi)``,
starting from lo = 0 (if the all-pruned network already meets the tolerance,
k* = 0) and hi = N. Because loss(k) is not strictly monotone, bisection returns
*a* boundary k (loss(k) <= thr < loss(k-1)); on models where loss(k) is
monotone this is the smallest k, and the tests check it agrees with a fine
grid scan (:func:`scan_smallest_k`).

Range: the definition is a minimum over k in {0, ..., N}, so the fraction
lies in [0, 1]. It is 0 exactly when the all-pruned network (biases only, a
constant prediction for an MLP) already meets ``(1 + alpha) * L``: a
degenerate model whose loss does not depend on its weights (e.g. untrained,
or stuck at the constant predictor). That value is kept rather than clamped
to the smallest positive fraction 1/N, because 0 is the true minimum and a
clamp would hide the degeneracy; the paper's (0, 1] holds for every model
whose all-pruned loss exceeds the tolerance, which includes every model
trained to the stopping rule (train CE <= 0.01 is far below the loss of any
constant prediction on a dataset with more than one class).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.ml.models import prunable_weights


@dataclass(frozen=True)
class PruneResult:
    """Outcome of a pruning search. Losses: mean CE (nats) on the given (x, y); seconds: wall.

    ``fraction_kept`` in [0, 1]; 0 only for a degenerate model whose all-pruned loss meets the tolerance.
    """

    fraction_kept: float
    weights_kept: int
    weights_total: int
    base_loss: float
    pruned_loss: float
    threshold: float
    probes: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


class _Flat:
    """The prunable weights of a model as one flat vector, with write/restore."""

    def __init__(self, model: nn.Module):
        self.params = [p for _, p in prunable_weights(model)]
        if not self.params:
            raise ValueError("model has no prunable weights (no Linear/Conv layers)")
        self.original = torch.cat([p.detach().reshape(-1) for p in self.params]).clone()
        self.sizes = [p.numel() for p in self.params]
        self.n = int(self.original.numel())

    @torch.no_grad()
    def write(self, flat: torch.Tensor) -> None:
        for p, chunk in zip(self.params, torch.split(flat, self.sizes), strict=True):
            p.copy_(chunk.view_as(p))

    def restore(self) -> None:
        self.write(self.original)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


@torch.no_grad()
def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(F.cross_entropy(model(x), y))


def magnitude_order(model: nn.Module) -> torch.Tensor:
    """Removal order of the flattened prunable weights: ascending |w|, ties by position (stable)."""
    flat = _Flat(model)
    return torch.sort(flat.original.abs(), stable=True).indices


def random_order(model: nn.Module, seed: int = 0) -> torch.Tensor:
    """A uniformly random removal order of the flattened prunable weights (seeded)."""
    n = _Flat(model).n
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))


def _masked(flat: _Flat, order: torch.Tensor, k: int) -> torch.Tensor:
    out = torch.zeros_like(flat.original)
    if k > 0:
        keep = order[flat.n - k :]
        out[keep] = flat.original[keep]
    return out


def loss_with_kept(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int, order: torch.Tensor | None = None
) -> float:
    """Mean CE (nats) of ``model`` on (x, y) when only the last ``k`` weights of ``order`` are kept.

    ``order`` is a removal order (default: :func:`magnitude_order`). Eval mode,
    no grad; the model's weights are restored afterwards.
    """
    flat = _Flat(model)
    order = magnitude_order(model) if order is None else order
    if not (0 <= k <= flat.n):
        raise ValueError(f"k must be in [0, {flat.n}], got {k}")
    with _eval_mode(model):
        try:
            flat.write(_masked(flat, order, k))
            return _loss(model, x, y)
        finally:
            flat.restore()


def _search(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, alpha: float, order: torch.Tensor | None
) -> PruneResult:
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"x and y must be non-empty with equal length, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    t0 = time.perf_counter()
    flat = _Flat(model)
    if order is None:
        order = torch.sort(flat.original.abs(), stable=True).indices
    n = flat.n
    probes = 0
    cache: dict[int, float] = {}

    def loss_k(k: int) -> float:
        nonlocal probes
        if k not in cache:
            flat.write(_masked(flat, order, k))
            cache[k] = _loss(model, x, y)
            probes += 1
        return cache[k]

    with _eval_mode(model):
        try:
            base = _loss(model, x, y)
            cache[n] = base
            thr = (1.0 + alpha) * base
            if loss_k(0) <= thr:
                k_star = 0
            else:
                lo, hi = 0, n  # invariant: loss(lo) > thr >= loss(hi)
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if loss_k(mid) <= thr:
                        hi = mid
                    else:
                        lo = mid
                k_star = hi
            pruned = cache[k_star]
        finally:
            flat.restore()
    return PruneResult(
        fraction_kept=k_star / n,
        weights_kept=k_star,
        weights_total=n,
        base_loss=base,
        pruned_loss=pruned,
        threshold=thr,
        probes=probes,
        seconds=time.perf_counter() - t0,
    )


def prunability(model: nn.Module, x: torch.Tensor, y: torch.Tensor, alpha: float = 0.10) -> PruneResult:
    """Global magnitude prunability of ``model`` on (x, y) — pass the FULL TRAIN set (no test data needed)."""
    return _search(model, x, y, alpha, None)


def random_pruning(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, alpha: float = 0.10, seed: int = 0
) -> PruneResult:
    """Like :func:`prunability` but removing weights in a uniformly random (seeded) order."""
    return _search(model, x, y, alpha, random_order(model, seed))


def scan_smallest_k(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 0.10,
    ks=None,
    order: torch.Tensor | None = None,
) -> int:
    """Smallest k in ``ks`` (default: every k in 0..N) with loss(k) <= (1+alpha)*L, by brute-force scan."""
    flat = _Flat(model)
    order = magnitude_order(model) if order is None else order
    ks = range(flat.n + 1) if ks is None else sorted(ks)
    with _eval_mode(model):
        thr = (1.0 + alpha) * _loss(model, x, y)
        try:
            for k in ks:
                flat.write(_masked(flat, order, k))
                if _loss(model, x, y) <= thr:
                    return int(k)
        finally:
            flat.restore()
    return flat.n


def pruned_model(model: nn.Module, k: int, order: torch.Tensor | None = None) -> nn.Module:
    """A deep copy of ``model`` keeping only the last ``k`` weights of ``order`` (default: the k largest |w|)."""
    out = copy.deepcopy(model)
    flat = _Flat(out)
    order = magnitude_order(out) if order is None else order
    if not (0 <= k <= flat.n):
        raise ValueError(f"k must be in [0, {flat.n}], got {k}")
    flat.write(_masked(flat, order, k))
    return out
