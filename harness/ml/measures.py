"""Generalization measures of one trained model, and the per-model table row.

- prunability / random pruning: see :mod:`harness.ml.pruning` (fractions in [0, 1]).
- random perturbation robustness: the largest sigma such that the mean train
  loss over ``draws`` FIXED Gaussian draws z stays <= (1 + alpha) * L, for
  ``w + sigma z`` ("absolute") or ``w + sigma |w| z`` ("magnitude"); the
  measure is 1/sigma^2 (larger = sharper). Perturbed parameters: the prunable
  weights (same set as pruning). Search: bracket by doubling/halving, then
  bisection in log-space for ``steps`` steps (final bracket ratio
  2**(1/2**steps)); returns the largest sigma found to pass.
- accuracy-rule perturbation (the Jiang et al. / PGDL lineage): :func:`pacbayes_sigma_accuracy`, columns
  ``sigma_acc_{absolute,magnitude}``, ``inv_sigma_sq_acc_*`` (1/sigma^2) and ``perturbation_acc_*``
  (the lineage's reported value sqrt(1/sigma^2 / m), m = train-set size).
- frobenius_norm: sqrt of the sum of squared prunable weights.
- the measure names, directions and scales are registered in :mod:`harness.ml.registry`.
- param_count: number of prunable weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.ml.models import param_count, prunable_weights
from harness.ml.pruning import _eval_mode, _Flat, _loss, prunability, random_pruning
from harness.ml.stats import generalization_gaps
from harness.ml.zoo import JsonCache, ModelConfig, ModelZoo

MEASURE_VERSION = 2  # 2: accuracy-rule (Jiang/PGDL) perturbation columns added; bump when any measure's definition or search changes (invalidates cached rows)
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


JIANG_SEED_OFFSET = 10348628753  # _pacbayes_sigma's BIG_NUMBER: the generator is seeded with it + seed
JIANG_MAGNITUDE_EPS = 1e-3


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).double().mean())


@torch.no_grad()
def pacbayes_sigma_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int = 0,
    magnitude_eps: float | None = None,
    search_depth: int = 15,
    montecarlo_samples: int = 10,
    accuracy_displacement: float = 0.1,
    displacement_tolerance: float = 1e-2,
) -> float:
    """The Jiang et al. / PGDL accuracy-rule sigma, as nitarshan/robust-generalization-measures
    ``data/generation/measures.py`` ``_pacbayes_sigma`` computes it (adapted there from Jiang et al.'s code).

    Bisection on sigma in [0, 2]: ``search_depth`` steps, each at sigma = (lower + upper) / 2; at each step
    ``montecarlo_samples`` fresh noise draws on ALL parameters (``model.parameters()`` order, biases
    included), each the train accuracy of the perturbed model; displacement = |mean accuracy - unperturbed
    accuracy|; stop when |displacement - 0.1| < 0.01, else too much perturbation -> upper = sigma, not
    enough -> lower = sigma. Returns the last sigma tried (dimensionless for the magnitude variant).

    Noise, exactly as the source writes it (one ``torch.Generator`` seeded ``10348628753 + seed``, drawn in
    sequence over steps, samples and parameters): absolute, ``torch.normal(0, sigma**2, p.shape)`` -- the
    std argument is sigma**2; magnitude-aware (``magnitude_eps`` = 1e-3 in the source),
    ``torch.normal(0, sigma**2 * |p|**2 + eps**2)`` -- that expression is passed as torch.normal's std.

    Differences from the source, none of which changes a value here: accuracy on the tensors (x, y) in one
    pass instead of a DataLoader; eval mode (our models have no BatchNorm, so the source's ``_reparam``
    folding is the identity; dropout is off as in every other measure); the noise is added to the model's
    own parameters and removed afterwards (the source adds it to a deep copy). Weights are restored.
    """
    params = list(model.parameters())
    original = [p.detach().clone() for p in params]
    was = model.training
    model.eval()
    try:
        accuracy = _accuracy(model, x, y)
        rng = torch.Generator().manual_seed(JIANG_SEED_OFFSET + int(seed))
        lower, upper = 0.0, 2.0
        sigma = 1.0
        for _ in range(search_depth):
            sigma = (lower + upper) / 2
            samples = []
            for _ in range(montecarlo_samples):
                if magnitude_eps is not None:
                    noise = [
                        torch.normal(0, sigma**2 * torch.abs(o) ** 2 + magnitude_eps**2, generator=rng)
                        for o in original
                    ]
                else:
                    noise = [torch.normal(0, sigma**2, o.shape, generator=rng) for o in original]
                for p, o, n in zip(params, original, noise, strict=True):
                    p.copy_(o + n)
                samples.append(_accuracy(model, x, y))
            for p, o in zip(params, original, strict=True):
                p.copy_(o)
            displacement = abs(float(np.mean(samples)) - accuracy)
            if abs(displacement - accuracy_displacement) < displacement_tolerance:
                break
            if displacement > accuracy_displacement:
                upper = sigma
            else:
                lower = sigma
        return sigma
    finally:
        for p, o in zip(params, original, strict=True):
            p.copy_(o)
        model.train(was)


def jiang_adjusted(inverse_sigma_sq: float, m: int) -> float:
    """The source's final dataset-size adjustment of a non-log measure: sqrt(value / m), m = train-set size."""
    return math.sqrt(inverse_sigma_sq / m)


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
    row.update(generalization_gaps(row["train_loss"], row["test_loss"], row["train_err"], row["test_err"]))
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
    for mode, eps in (("absolute", None), ("magnitude", JIANG_MAGNITUDE_EPS)):
        t0 = time.perf_counter()
        sigma = pacbayes_sigma_accuracy(model, x, y, seed=seed, magnitude_eps=eps)
        out[f"sigma_acc_{mode}"] = sigma
        out[f"inv_sigma_sq_acc_{mode}"] = 1.0 / sigma**2
        out[f"perturbation_acc_{mode}"] = jiang_adjusted(1.0 / sigma**2, len(y))
        out[f"time_perturbation_acc_{mode}_s"] = time.perf_counter() - t0
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
    train and measure disjoint models in parallel and every model exactly once. Each row carries
    ``key`` (the zoo entry's key) and ``config_key`` (``ModelConfig.key``; the two differ for the
    ensemble trainer).
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
    # the config's key beside the entry key (they differ for the ensemble trainer): grids match on it
    return [{**rows[i], "config_key": cfgs[i].key()} for i in range(n)]
