"""The one registry of paper A's generalization measures (name -> function, direction, scale), and the gaps.

Every measure a suite scores, the API computes or the catalogue adds to a zoo row is named here once:

- ``fn(model, x_train, y_train, alpha) -> float`` computes it on one model from its TRAIN data (None for
  ``neg_sum_train_losses``, which needs the training history: it is a zoo-row column);
- ``direction``: +1 if a larger value is read as a more complex model (expected to go with a larger gap),
  -1 if the reverse (e.g. ``margin_p10``); the statistics use the value as defined, the direction is what a
  report shows as the expected sign;
- ``scale``: ``"log"`` for a measure that spans orders of magnitude over a family (1/sigma^2, counts,
  sums of squares, path norms): its adjusted R^2 is also computed on log10(measure) and scatter plots use a
  log axis; ``"linear"`` otherwise;
- ``group``: which table row builder produces the column: ``"measures"``
  (:func:`harness.ml.measures.measure_model`), ``"catalogue"`` (:func:`harness.ml.catalogue.catalogue_measures`)
  or ``"training"`` (the training history).

:func:`generalization_gaps` (from :mod:`harness.ml.stats`) is the one definition of both gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from harness.ml import catalogue as cat
from harness.ml.measures import (
    JIANG_MAGNITUDE_EPS,
    frobenius_norm,
    jiang_adjusted,
    pacbayes_sigma_accuracy,
    perturbation_sigma,
)
from harness.ml.models import param_count
from harness.ml.pruning import prunability, random_pruning
from harness.ml.stats import GAPS, generalization_gaps

__all__ = [
    "GAPS",
    "REGISTRY",
    "Measure",
    "MeasureFn",
    "functions",
    "generalization_gaps",
    "log_scale",
    "names",
]

MeasureFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, float], float]


@dataclass(frozen=True)
class Measure:
    name: str
    fn: MeasureFn | None
    direction: int
    scale: str
    group: str
    description: str


def _perturbation(mode: str) -> MeasureFn:
    return lambda model, x, y, alpha: 1.0 / perturbation_sigma(model, x, y, alpha=alpha, mode=mode) ** 2


def _jiang(eps: float | None) -> MeasureFn:
    return lambda model, x, y, alpha: jiang_adjusted(
        1.0 / pacbayes_sigma_accuracy(model, x, y, magnitude_eps=eps) ** 2, len(y)
    )


_ALL = [
    Measure(
        "prunability",
        lambda m, x, y, a: prunability(m, x, y, a).fraction_kept,
        1,
        "linear",
        "measures",
        "smallest fraction of weights kept by global magnitude pruning with train CE <= (1 + alpha) L",
    ),
    Measure(
        "weights_kept",
        lambda m, x, y, a: float(prunability(m, x, y, a).weights_kept),
        1,
        "log",
        "measures",
        "absolute number of weights magnitude pruning keeps",
    ),
    Measure(
        "random_prunability",
        lambda m, x, y, a: random_pruning(m, x, y, a, seed=0).fraction_kept,
        1,
        "linear",
        "measures",
        "prunability with a uniformly random removal order (seed 0)",
    ),
    Measure(
        "perturbation_absolute",
        _perturbation("absolute"),
        1,
        "log",
        "measures",
        "loss rule: 1/sigma^2, w + sigma z on the weights, mean train CE of 5 draws <= (1 + alpha) L",
    ),
    Measure(
        "perturbation_magnitude",
        _perturbation("magnitude"),
        1,
        "log",
        "measures",
        "loss rule: 1/sigma^2, w + sigma |w| z on the weights, mean train CE of 5 draws <= (1 + alpha) L",
    ),
    Measure(
        "perturbation_acc_absolute",
        _jiang(None),
        1,
        "log",
        "measures",
        "accuracy rule (Jiang/PGDL _pacbayes_sigma, all parameters, 10 draws): sqrt(1/sigma^2 / m)",
    ),
    Measure(
        "perturbation_acc_magnitude",
        _jiang(JIANG_MAGNITUDE_EPS),
        1,
        "log",
        "measures",
        "accuracy rule, magnitude-aware (eps 1e-3): sqrt(1/sigma^2 / m)",
    ),
    Measure(
        "frobenius",
        lambda m, x, y, a: frobenius_norm(m),
        1,
        "linear",
        "measures",
        "sqrt of the sum of squared weights",
    ),
    Measure("params", lambda m, x, y, a: float(param_count(m)), 1, "log", "measures", "number of weights"),
    Measure(
        "neg_sum_train_losses",
        None,
        1,
        "linear",
        "training",
        "minus the sum over epochs of the mean minibatch train CE",
    ),
    Measure(
        "frobenius_sum_sq",
        lambda m, x, y, a: cat.frobenius_sum_sq(m),
        1,
        "log",
        "catalogue",
        "sum_l ||W_l||_F^2",
    ),
    Measure(
        "frobenius_log_prod",
        lambda m, x, y, a: cat.frobenius_log_prod(m),
        1,
        "linear",
        "catalogue",
        "sum_l log ||W_l||_F^2",
    ),
    Measure(
        "spectral_sum_sq",
        lambda m, x, y, a: cat.spectral_sum_sq(m),
        1,
        "log",
        "catalogue",
        "sum_l sigma_max(W_l)^2",
    ),
    Measure(
        "spectral_log_prod",
        lambda m, x, y, a: cat.spectral_log_prod(m),
        1,
        "linear",
        "catalogue",
        "sum_l log sigma_max(W_l)^2",
    ),
    Measure(
        "path_norm",
        lambda m, x, y, a: cat.path_norm(m, tuple(x.shape[1:])),
        1,
        "log",
        "catalogue",
        "sum over paths of prod w^2 (ones input, biases 0)",
    ),
    Measure(
        "margin_p10",
        lambda m, x, y, a: cat.margin_percentile(m, x, y, 10.0),
        -1,
        "linear",
        "catalogue",
        "10th percentile of train margins (logits)",
    ),
    Measure(
        "neg_margin_p10",
        lambda m, x, y, a: -cat.margin_percentile(m, x, y, 10.0),
        1,
        "linear",
        "catalogue",
        "minus the 10th percentile margin (larger = worse, as a complexity)",
    ),
    Measure(
        "pacbayes_flatness",
        lambda m, x, y, a: cat.pac_bayes_flatness(m, x, y).measure,
        1,
        "log",
        "catalogue",
        "1/sigma^2, train accuracy drop <= 0.1 (5 draws, weights only, log bisection)",
    ),
    Measure(
        "weightwatcher_alpha",
        lambda m, x, y, a: cat.weightwatcher_alpha(m),
        1,
        "linear",
        "catalogue",
        "mean over layers of weightwatcher 0.7.7's power-law alpha (data-free; beyond the paper)",
    ),
    Measure(
        "n_eff",
        lambda m, x, y, a: cat.effective_dimensionality(m, x, y)[0],
        1,
        "linear",
        "catalogue",
        "sum_i lambda_i/(lambda_i + z) over top-k Hessian eigenvalues",
    ),
]

REGISTRY: dict[str, Measure] = {m.name: m for m in _ALL}


def names(group: str | None = None) -> list[str]:
    """Registered measure names (registry order), optionally of one ``group``."""
    return [n for n, m in REGISTRY.items() if group is None or m.group == group]


def log_scale() -> set[str]:
    """The measures that span orders of magnitude (``scale == "log"``)."""
    return {n for n, m in REGISTRY.items() if m.scale == "log"}


def functions() -> dict[str, MeasureFn]:
    """name -> fn(model, x_train, y_train, alpha) for every measure computable from a model alone."""
    return {n: m.fn for n, m in REGISTRY.items() if m.fn is not None}
