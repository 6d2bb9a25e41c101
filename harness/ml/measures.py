"""Generalization measures of one trained model, and the per-model table row.

- prunability / random pruning: see :mod:`harness.ml.pruning` (fractions in [0, 1]).
- random perturbation robustness: the largest sigma such that the mean train
  loss over ``draws`` FIXED Gaussian draws z stays <= (1 + alpha) * L, for
  ``w + sigma z`` ("absolute") or ``w + sigma |w| z`` ("magnitude"); the
  measure is 1/sigma^2 (larger = sharper). Perturbed parameters: the prunable
  weights (same set as pruning). Search: bracket by doubling/halving, then
  bisection in log-space for ``steps`` steps (final bracket ratio
  2**(1/2**steps)); returns the largest sigma found to pass.
- frobenius_norm: sqrt of the sum of squared prunable weights.
- param_count: number of prunable weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from harness.ml.models import param_count, prunable_weights
from harness.ml.pruning import _eval_mode, _Flat, _loss, prunability, random_pruning
from harness.ml.zoo import JsonCache, ModelConfig, ModelZoo

MEASURE_VERSION = 1  # bump when any measure's definition or search changes (invalidates cached rows)
MODES = ("absolute", "magnitude")


@torch.no_grad()
def perturbation_sigma(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 0.10,
    mode: str = "absolute",
    draws: int = 5,
    seed: int = 0,
    steps: int = 10,
    max_bracket_steps: int = 40,
) -> float:
    """Largest noise scale sigma (dimensionless for "magnitude", weight units for "absolute")
    keeping the mean train CE over ``draws`` fixed draws <= (1 + alpha) * L. Weights are restored."""
    if mode not in MODES:
        raise ValueError(f"unknown perturbation mode {mode!r}: expected one of {MODES}")
    if draws < 1 or steps < 1:
        raise ValueError("draws and steps must be >= 1")
    flat = _Flat(model)
    gen = torch.Generator().manual_seed(int(seed))
    noise = [torch.randn(flat.n, generator=gen) for _ in range(draws)]
    if mode == "magnitude":
        noise = [z * flat.original.abs() for z in noise]

    with _eval_mode(model):
        try:
            base = _loss(model, x, y)
            thr = (1.0 + alpha) * base

            def ok(sigma: float) -> bool:
                total = 0.0
                for z in noise:
                    flat.write(flat.original + sigma * z)
                    total += _loss(model, x, y)
                return total / draws <= thr

            # initial guess: 1% of the rms weight (absolute) or 1% relative (magnitude)
            rms = float(flat.original.pow(2).mean().sqrt())
            s = 0.01 * (rms if mode == "absolute" else 1.0)
            s = s if s > 0 else 1e-3
            if ok(s):
                lo = s
                for _ in range(max_bracket_steps):
                    if not ok(lo * 2):
                        break
                    lo *= 2
                else:
                    return lo  # loss never rose above the tolerance: report the largest tried
                hi = lo * 2
            else:
                hi = s
                for _ in range(max_bracket_steps):
                    if ok(hi / 2):
                        break
                    hi /= 2
                else:
                    return hi / 2  # tiny sigma still fails (e.g. base loss 0): smallest tried
                lo = hi / 2
            for _ in range(steps):
                mid = math.sqrt(lo * hi)
                if ok(mid):
                    lo = mid
                else:
                    hi = mid
            return lo
        finally:
            flat.restore()


def frobenius_norm(model: nn.Module) -> float:
    """sqrt(sum of squared prunable weights) — the Frobenius norm over all weight tensors."""
    return float(math.sqrt(sum(float(p.detach().pow(2).sum()) for _, p in prunable_weights(model))))


def weights_kept_abs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, alpha: float = 0.10) -> int:
    """Absolute number of weights global magnitude pruning must keep (the size-dependent counterpart)."""
    return prunability(model, x, y, alpha).weights_kept


def measure_model(trained, alpha: float = 0.10, draws: int = 5, seed: int = 0) -> dict[str, Any]:
    """One table row for a :class:`harness.ml.zoo.TrainedModel`.

    Config fields, converged, train/test loss (nats) and error (1 - acc), loss_gap = test_loss -
    train_loss, error_gap = test_err - train_err, prunability (fraction), weights_kept,
    random_prunability, perturbation sigmas and 1/sigma^2 for both modes, frobenius, params, and wall
    seconds per measure (``time_*_s``, plus ``time_train_s`` from training).
    """
    data = trained.data()
    model = trained.model
    x, y = data.x_train, data.y_train
    row: dict[str, Any] = dict(trained.config.canonical())
    row["key"] = trained.key or trained.config.key()
    r = trained.result
    row.update(
        converged=bool(r.converged),
        epochs=r.epochs,
        train_loss=r.final_train_loss,
        test_loss=r.final_test_loss,
        train_err=1.0 - r.final_train_acc,
        test_err=1.0 - r.final_test_acc,
    )
    row["loss_gap"] = row["test_loss"] - row["train_loss"]
    row["error_gap"] = row["test_err"] - row["train_err"]
    row["time_train_s"] = r.seconds
    row["neg_sum_train_losses"] = -float(sum(r.epoch_train_losses))
    row.update(_model_measures(model, x, y, alpha=alpha, draws=draws, seed=seed))
    return row


def _model_measures(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, alpha: float, draws: int, seed: int
) -> dict:
    out: dict[str, Any] = {}
    pr = prunability(model, x, y, alpha)
    out.update(prunability=pr.fraction_kept, weights_kept=pr.weights_kept, prune_probes=pr.probes)
    out["time_prunability_s"] = pr.seconds
    rp = random_pruning(model, x, y, alpha, seed=seed)
    out.update(random_prunability=rp.fraction_kept, time_random_pruning_s=rp.seconds)
    for mode in MODES:
        t0 = time.perf_counter()
        sigma = perturbation_sigma(model, x, y, alpha=alpha, mode=mode, draws=draws, seed=seed)
        out[f"sigma_{mode}"] = sigma
        out[f"perturbation_{mode}"] = 1.0 / sigma**2
        out[f"time_perturbation_{mode}_s"] = time.perf_counter() - t0
    out["frobenius"] = frobenius_norm(model)
    out["params"] = param_count(model)
    return out


def measure_family(
    zoo: ModelZoo,
    cfgs: Sequence[ModelConfig],
    worker_index: int = 0,
    worker_count: int = 1,
    progress: Callable[[str], None] | None = None,
    alpha: float = 0.10,
) -> list[dict[str, Any]]:
    """Train (once) and measure (once) every config; one :func:`measure_model` row per config, in order.

    Rows are cached in ``<zoo cache>/measures-v<MEASURE_VERSION>/<config key>.json`` under per-key file
    locks. Concurrent processes pass their ``worker_index``/``worker_count``: each starts at a different
    offset, takes the keys nobody holds, and waits for the others' keys at the end, so N processes
    train and measure disjoint models in parallel and every model exactly once.
    """
    if alpha != 0.10:
        namespace = f"measures-v{MEASURE_VERSION}-alpha{alpha:g}"
    else:
        namespace = f"measures-v{MEASURE_VERSION}"
    cache = JsonCache(zoo.cache_dir, namespace)
    cfgs = list(cfgs)
    n = len(cfgs)
    offset = (worker_index * n) // max(worker_count, 1) if n else 0

    seconds: dict[int, float] = {}
    done = hits = 0

    def compute(i: int) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            cfg = cfgs[i]
            tm = zoo.get(cfg, progress=progress)
            t0 = time.perf_counter()
            row = measure_model(tm, alpha=alpha)
            seconds[i] = time.perf_counter() - t0
            return row

        return run

    def finished(i: int, hit: bool) -> None:
        nonlocal done, hits
        done += 1
        hits += int(hit)
        if progress is not None and not hit:
            progress(f"[{zoo.worker}] measured {done}/{n}: {cfgs[i].short()} in {seconds.get(i, 0.0):.1f}s")

    rows: dict[int, dict[str, Any]] = {}
    deferred = []
    for j in range(n):
        i = (j + offset) % n
        value, hit = cache.get_or_compute(cfgs[i].key(), compute(i), blocking=False)
        if value is None:
            deferred.append(i)
        else:
            rows[i] = value
            finished(i, hit)
    for i in deferred:
        value, hit = cache.get_or_compute(cfgs[i].key(), compute(i), blocking=True)
        rows[i] = value  # type: ignore[assignment]
        finished(i, hit)
    if progress is not None:
        progress(f"[{zoo.worker}] measured {n}/{n} rows of the family ({hits} from the cache)")
    return [rows[i] for i in range(n)]
