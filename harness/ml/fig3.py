"""Fig 3 of paper A (claim A8): magnitude pruning versus a random perturbation of the same norm.

For a trained model and a list of pruned fractions f, global magnitude
pruning removes the ``round(f * N)`` smallest-|w| prunable weights (no
retraining); the perturbation adds Gaussian noise to *all* prunable weights,
scaled so its L2 norm equals the L2 norm of the pruned-away weights (the
pruning "perturbation" has exactly that norm). Both are evaluated on the
full train and test sets in eval mode; the noise curve is the mean over
``draws`` seeded draws. Losses are mean cross-entropy in nats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.ml.models import prunable_weights

SMOKE_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
PAPER_FRACTIONS = tuple(np.round(np.linspace(0.0, 0.98, 50), 4).tolist())


@torch.no_grad()
def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(F.cross_entropy(model(x), y))


@torch.no_grad()
def prune_vs_noise_curves(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    fractions: Sequence[float] = SMOKE_FRACTIONS,
    draws: int = 5,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Rows per pruned fraction: train/test loss after pruning and after equal-norm Gaussian noise.

    Row fields: ``fraction_pruned``, ``weights_pruned`` (count), ``removed_norm``
    (L2 norm of the pruned-away weights), ``prune_train_loss``,
    ``prune_test_loss``, ``noise_train_loss`` / ``noise_test_loss`` (mean over
    draws), their ``*_std`` (population std over the draws, ddof 0) and
    ``*_sem`` (standard error of the mean: sample std, ddof 1, over
    sqrt(draws); 0 when draws == 1), and ``noise_draws``. The model's weights
    are restored afterwards.
    """
    fr = [float(f) for f in fractions]
    if any(not (0.0 <= f <= 1.0) for f in fr):
        raise ValueError(f"fractions must lie in [0, 1], got {fr}")
    if draws < 1:
        raise ValueError("draws must be >= 1")
    params = [w for _, w in prunable_weights(model)]
    if not params:
        raise ValueError(f"{type(model).__name__} has no Linear/Conv weights")
    original = torch.cat([p.detach().reshape(-1) for p in params]).clone()
    n = original.numel()
    order = torch.sort(original.abs(), stable=True).indices  # removal order: smallest |w| first
    gen = torch.Generator().manual_seed(int(seed))
    directions = []
    for _ in range(draws):
        z = torch.randn(n, generator=gen, dtype=original.dtype)
        directions.append(z / z.norm())

    def write(flat: torch.Tensor) -> None:
        i = 0
        for p in params:
            p.copy_(flat[i : i + p.numel()].reshape(p.shape))
            i += p.numel()

    was_training = model.training
    model.eval()
    rows = []
    try:
        for f in fr:
            n_pruned = int(round(f * n))
            pruned = original.clone()
            pruned[order[:n_pruned]] = 0.0
            removed_norm = float(original[order[:n_pruned]].norm())
            write(pruned)
            row = {
                "fraction_pruned": f,
                "weights_pruned": n_pruned,
                "removed_norm": removed_norm,
                "prune_train_loss": _loss(model, x_train, y_train),
                "prune_test_loss": _loss(model, x_test, y_test),
            }
            tr, te = [], []
            for d in directions:
                write(original + removed_norm * d)
                tr.append(_loss(model, x_train, y_train))
                te.append(_loss(model, x_test, y_test))
            row.update(
                noise_draws=len(directions),
                noise_train_loss=float(np.mean(tr)),
                noise_train_loss_std=float(np.std(tr)),
                noise_train_loss_sem=_sem(tr),
                noise_test_loss=float(np.mean(te)),
                noise_test_loss_std=float(np.std(te)),
                noise_test_loss_sem=_sem(te),
            )
            rows.append(row)
    finally:
        write(original)
        model.train(was_training)
    return rows


def summarise_curves(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The claim's quantities for one model's curves (rows from :func:`prune_vs_noise_curves`).

    - ``best_prune_test_gain``: unpruned test loss minus the lowest pruned test loss over
      fractions > 0 (> 0: some pruning lowered the test loss);
    - ``best_noise_test_gain``: the same for the noise curve (> 0: noise lowered it somewhere);
    - ``mean_prune_train_increase`` / ``mean_noise_train_increase``: mean over fractions > 0 of the
      train-loss increase over unpruned (the area under the curves, per point);
    - ``share_prune_hurts_train_more``: share of fractions > 0 where pruning raised the train
      loss more than equal-norm noise.
    """
    base = [r for r in rows if r["fraction_pruned"] == 0.0]
    if not base:
        raise ValueError("curves need the unpruned point (fraction 0.0)")
    b = base[0]
    rest = [r for r in rows if r["fraction_pruned"] > 0.0]
    if not rest:
        raise ValueError("curves need at least one fraction > 0")
    best = min(rest, key=lambda r: r["prune_test_loss"])
    dp = np.array([r["prune_train_loss"] - b["prune_train_loss"] for r in rest])
    dn = np.array([r["noise_train_loss"] - b["prune_train_loss"] for r in rest])
    return {
        "base_train_loss": b["prune_train_loss"],
        "base_test_loss": b["prune_test_loss"],
        "best_prune_test_gain": b["prune_test_loss"] - best["prune_test_loss"],
        "best_prune_fraction": best["fraction_pruned"],
        "best_noise_test_gain": b["prune_test_loss"] - min(r["noise_test_loss"] for r in rest),
        "mean_prune_train_increase": float(dp.mean()),
        "mean_noise_train_increase": float(dn.mean()),
        "share_prune_hurts_train_more": float(np.mean(dp > dn)),
    }


def _sem(values: Sequence[float]) -> float:
    """Standard error of the mean (sample std, ddof 1, over sqrt(n)); 0 for a single value."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def noise_lowers_test(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], level: float = 0.05
) -> dict[str, Any]:
    """Does an equal-norm random perturbation *significantly* lower the test loss anywhere? (A8 part b)

    For every model and every pruned fraction f > 0, the gain is the unpruned
    test loss minus the noisy test loss, over the ``noise_draws`` draws; its
    mean is ``base - noise_test_loss`` and its standard error is
    ``noise_test_loss_sem`` (the unpruned loss is a constant). H0 at each
    point: the expected gain is <= 0 (noise does not lower the test loss).
    One-sided t-test with ``draws - 1`` degrees of freedom; the family of
    ``m`` = (models x fractions) points is controlled at ``level`` with a
    Bonferroni correction, so a point counts as "noise lowers the test loss"
    only if ``mean_gain > t_{1 - level/m, draws-1} * sem``. A zero standard
    error with a positive mean gain counts as significant.

    Returns ``{"level", "n_tests", "t_critical", "df", "any_significant",
    "per_model": {label: {"max_mean_gain", "max_mean_gain_fraction",
    "max_mean_gain_sem", "max_t", "max_t_fraction", "significant_fractions"}}}``.
    """
    from scipy import stats as sps

    if not (0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level}")
    points = []
    for label, rows in curves.items():
        base = [r for r in rows if r["fraction_pruned"] == 0.0]
        if not base:
            raise ValueError(f"{label}: curves need the unpruned point (fraction 0.0)")
        b = base[0]["prune_test_loss"]
        for r in rows:
            if r["fraction_pruned"] > 0.0:
                points.append((label, r, b - r["noise_test_loss"], float(r["noise_test_loss_sem"])))
    if not points:
        raise ValueError("no fraction > 0 to test")
    draws = {int(r["noise_draws"]) for _, r, _, _ in points}
    if len(draws) != 1:
        raise ValueError(f"curves with different numbers of draws: {sorted(draws)}")
    (n_draws,) = draws
    m = len(points)
    df = n_draws - 1
    t_crit = float(sps.t.ppf(1 - level / m, df)) if df >= 1 else math.inf

    def t_of(gain: float, sem: float) -> float:
        if sem > 0:
            return gain / sem
        return math.inf if gain > 0 else (0.0 if gain == 0 else -math.inf)

    per_model: dict[str, dict[str, Any]] = {}
    for label in curves:
        pts = [(r, g, se) for lab, r, g, se in points if lab == label]
        best_gain = max(pts, key=lambda p: p[1])
        best_t = max(pts, key=lambda p: t_of(p[1], p[2]))
        per_model[label] = {
            "max_mean_gain": best_gain[1],
            "max_mean_gain_fraction": best_gain[0]["fraction_pruned"],
            "max_mean_gain_sem": best_gain[2],
            "max_t": t_of(best_t[1], best_t[2]),
            "max_t_fraction": best_t[0]["fraction_pruned"],
            "significant_fractions": [r["fraction_pruned"] for r, g, se in pts if t_of(g, se) > t_crit],
        }
    return {
        "level": level,
        "n_tests": m,
        "df": df,
        "t_critical": t_crit,
        "any_significant": any(v["significant_fractions"] for v in per_model.values()),
        "per_model": per_model,
    }


def prune_gain_beyond_noise_spread(
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """A8 (a) with an effect size: where does pruning lower the test loss by MORE than the spread of the
    equal-norm noise at the same fraction?

    At each fraction f > 0: ``gain`` = unpruned test loss - pruned test loss (nats, deterministic);
    ``spread`` = the sample standard deviation (ddof 1) of the test loss over the noise draws at f
    (``noise_test_loss_sem * sqrt(draws)``; 0 with a single draw). A fraction counts iff gain > spread, so a
    pruning gain smaller than what one random equal-norm direction already varies by is not an effect.

    Returns per model: ``best_excess`` (max over f of gain - spread), ``best_excess_fraction``,
    ``gain_at_best`` and ``spread_at_best``, and ``fractions_beyond_spread`` (every f with gain > spread).
    """
    out: dict[str, dict[str, Any]] = {}
    for label, rows in curves.items():
        base = [r for r in rows if r["fraction_pruned"] == 0.0]
        if not base:
            raise ValueError(f"{label}: curves need the unpruned point (fraction 0.0)")
        b = base[0]["prune_test_loss"]
        pts = []
        for r in rows:
            if r["fraction_pruned"] > 0.0:
                spread = float(r["noise_test_loss_sem"]) * math.sqrt(int(r["noise_draws"]))
                pts.append((r["fraction_pruned"], b - r["prune_test_loss"], spread))
        if not pts:
            raise ValueError(f"{label}: no fraction > 0")
        f, gain, spread = max(pts, key=lambda p: p[1] - p[2])
        out[label] = {
            "best_excess": gain - spread,
            "best_excess_fraction": f,
            "gain_at_best": gain,
            "spread_at_best": spread,
            "fractions_beyond_spread": [p[0] for p in pts if p[1] > p[2]],
        }
    return out


def plot_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], title: str):
    """Train (left) and test (right) loss vs pruned fraction: pruning solid, equal-norm noise dashed."""
    import matplotlib.pyplot as plt

    import harness.report.plots  # noqa: F401  (headless backend)

    fig, (ax_tr, ax_te) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (label, rows) in enumerate(curves.items()):
        c = f"C{i}"
        f = [r["fraction_pruned"] for r in rows]
        ax_tr.plot(f, [r["prune_train_loss"] for r in rows], "-o", color=c, ms=3, label=f"{label} pruning")
        ax_tr.plot(f, [r["noise_train_loss"] for r in rows], "--", color=c, label=f"{label} equal-norm noise")
        ax_te.plot(f, [r["prune_test_loss"] for r in rows], "-o", color=c, ms=3, label=f"{label} pruning")
        ax_te.plot(f, [r["noise_test_loss"] for r in rows], "--", color=c, label=f"{label} equal-norm noise")
        ax_te.axhline(rows[0]["prune_test_loss"], color=c, lw=0.6, alpha=0.5)
    for ax, name in ((ax_tr, "train"), (ax_te, "test")):
        ax.set_xlabel("fraction of weights pruned (noise: same L2 norm)")
        ax.set_ylabel(f"{name} loss (CE, nats)")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    ax_te.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
