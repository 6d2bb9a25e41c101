"""Width sweeps of paper A: Fig 1 (width sweep, claim A2) and Fig 2 (double descent, claim A7).

A sweep is a list of :class:`harness.ml.zoo.ModelConfig` that differ only in
``width``; the models come from the cached :class:`harness.ml.zoo.ModelZoo`
(trained once across xdist workers). This module defines the sweeps per
profile, measures one trained model of a sweep (:func:`measure_sweep_model`)
and summarises a sweep (Kendall tau over widths, peak positions).

Units: losses are mean cross-entropy in nats on the full split; errors are
1 - accuracy; ``frobenius`` is sqrt(sum of squared prunable weights);
``params`` counts prunable weights; ``weights_kept`` is an absolute count;
``prunability`` a fraction; ``n_eff`` a dimensionless count; times in s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.ml.catalogue import effective_dimensionality
from harness.ml.measures import frobenius_norm
from harness.ml.models import param_count
from harness.ml.pruning import prunability
from harness.ml.stats import generalization_gaps, kendall_tau
from harness.ml.zoo import ModelConfig

SWEEP_MEASURE_VERSION = 2  # 2: N_eff truncation columns (smallest counted eigenvalue, bounds); bump when measure_sweep_model changes (invalidates cached rows)


@dataclass(frozen=True)
class SweepSpec:
    """A width sweep: ``base`` ModelConfig fields plus the widths; N_eff settings (Hessian top-k, z, examples)."""

    name: str
    widths: tuple[int, ...]
    base: Mapping[str, Any]
    neff_k: int = 0  # 0: N_eff not computed
    neff_z: float = 1.0
    neff_examples: int | None = 1000

    def configs(self) -> list[ModelConfig]:
        return [ModelConfig.from_dict({**dict(self.base), "width": int(w)}) for w in self.widths]


# Fig 1 (A2): MLPs on MNIST-1D trained to the paper's stopping rule (train CE <= 0.01), no label noise.
# Adam 1e-3 / batch 100 (the Fig 2 recipe without label noise): SGD lr 0.05 + momentum 0.9 oscillated at
# widths 32-64 (train CE 0.4-0.5 after 300 epochs, after reaching 0.09 at epoch 60), so those widths never
# met the stopping rule. With Adam, width 32 was still at train CE 0.49 after 400 epochs (33 s), so the
# smoke sweep starts at 64 (converged at epoch 355).
_FIG1_BASE = dict(
    dataset="mnist1d",
    arch="mlp",
    depth=2,
    optimizer="adam",
    lr=1e-3,
    batch_size=100,
    target_train_loss=0.01,
    check_every=5,
    seed=0,
)
# Fig 2 (A7): 15% label noise, 2 hidden layers, Adam 1e-3, batch 100, fixed epoch budget (no early stop:
# target_train_loss is set far below reach so every width trains the same number of epochs).
_FIG2_BASE = dict(
    dataset="mnist1d",
    arch="mlp",
    depth=2,
    optimizer="adam",
    lr=1e-3,
    batch_size=100,
    target_train_loss=1e-9,
    label_noise=0.15,
    noise_seed=0,
    seed=0,
)

SWEEPS: dict[str, dict[str, SweepSpec]] = {
    "smoke": {
        "fig1": SweepSpec("fig1", (64, 128, 256, 512, 1024), {**_FIG1_BASE, "max_epochs": 400}),
        "fig2": SweepSpec(
            "fig2",
            (4, 8, 16, 32, 64, 128, 256, 512),
            {**_FIG2_BASE, "max_epochs": 200, "check_every": 50},
            neff_k=20,
            neff_z=1.0,
            neff_examples=1000,
        ),
    },
    "paper": {
        "fig1": SweepSpec(
            "fig1",
            (48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048),
            {**_FIG1_BASE, "max_epochs": 1000},
        ),
        "fig2": SweepSpec(
            "fig2",
            (2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512),
            {**_FIG2_BASE, "max_epochs": 400, "check_every": 50},
            neff_k=50,
            neff_z=1.0,
            neff_examples=2000,
        ),
    },
}


def sweep_spec(profile: str, name: str) -> SweepSpec:
    """The sweep ``name`` ('fig1' or 'fig2') of ``profile`` ('smoke' or 'paper')."""
    try:
        return SWEEPS[profile][name]
    except KeyError:
        raise ValueError(
            f"no sweep {name!r} for profile {profile!r}; known: { {p: list(s) for p, s in SWEEPS.items()} }"
        ) from None


def measure_sweep_model(
    trained, alpha: float = 0.10, neff_k: int = 0, neff_z: float = 1.0, neff_examples: int | None = 1000
) -> dict[str, Any]:
    """One row of a width sweep for a :class:`harness.ml.zoo.TrainedModel`.

    Prunability (fraction) and weights kept (count) on the full (noisy, for
    Fig 2) train set; params, Frobenius norm; N_eff from the top ``neff_k``
    Hessian eigenvalues of the train loss when ``neff_k`` > 0.
    """
    data = trained.data()
    model = trained.model
    r = trained.result
    row: dict[str, Any] = {
        "width": int(trained.config.width),
        "key": trained.key or trained.config.key(),
        "converged": bool(r.converged),
        "epochs": int(r.epochs),
        "train_loss": r.final_train_loss,
        "test_loss": r.final_test_loss,
        "train_err": 1.0 - r.final_train_acc,
        "test_err": 1.0 - r.final_test_acc,
        "time_train_s": r.seconds,
    }
    row.update(generalization_gaps(row["train_loss"], row["test_loss"], row["train_err"], row["test_err"]))
    t0 = time.perf_counter()
    pr = prunability(model, data.x_train, data.y_train, alpha)
    row.update(
        prunability=pr.fraction_kept,
        weights_kept=pr.weights_kept,
        time_prunability_s=time.perf_counter() - t0,
    )
    row["params"] = param_count(model)
    row["frobenius"] = frobenius_norm(model)
    if neff_k > 0:
        t0 = time.perf_counter()
        n_eff, eig = effective_dimensionality(
            model, data.x_train, data.y_train, k=neff_k, z=neff_z, max_examples=neff_examples
        )
        row.update(n_eff=n_eff, hessian_top_eig=float(eig[0]), time_n_eff_s=time.perf_counter() - t0)
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        row.update(n_eff_truncation(eig, neff_z, n_params))
    return row


def n_eff_truncation(eigenvalues: Sequence[float], z: float, n_params: int) -> dict[str, Any]:
    """Does counting only the top-k Hessian eigenvalues cap N_eff? (N_eff = sum_i lambda_i / (lambda_i + z))

    With the eigenvalues sorted descending, every uncounted eigenvalue is <= the smallest counted one
    lambda_k, and lambda / (lambda + z) is increasing, so the true N_eff (negative eigenvalues clipped to 0)
    lies in [N_eff_k, N_eff_k + (n - k) lambda_k / (lambda_k + z)]: ``n_eff_upper_bound``. ``n_eff_capped``
    is True when lambda_k >= z (the smallest counted eigenvalue still counts >= 1/2: the count k, not the
    spectrum, ends the sum), and N_eff is then reported as a lower bound; False when lambda_k < z.
    """
    lam = np.clip(np.asarray(eigenvalues, dtype=float), 0.0, None)
    k = int(lam.size)
    lam_k = float(lam.min()) if k else 0.0
    n_eff = float(np.sum(lam / (lam + z)))
    tail = max(int(n_params) - k, 0) * lam_k / (lam_k + z)
    return {
        "n_eff_eigs_counted": k,
        "n_eff_min_counted_eig": lam_k,
        "n_eff_threshold_z": float(z),
        "n_eff_capped": bool(lam_k >= z),
        "n_eff_upper_bound": n_eff + tail,
    }


def peak_index(values: Sequence[float]) -> int:
    """Index of the largest finite value (first one on ties)."""
    v = np.asarray(values, dtype=float)
    if not np.any(np.isfinite(v)):
        raise ValueError("peak_index: no finite value")
    return int(np.nanargmax(np.where(np.isfinite(v), v, -np.inf)))


def interior_peak(widths: Sequence[float], values: Sequence[float]) -> dict[str, Any]:
    """Where a curve over widths peaks, and whether it is a double-descent-like interior peak.

    ``interior``: the (global, first on ties) maximum is neither the first nor
    the last width, and the curve falls after it (last value < peak value) --
    since the first value is then also below the peak, the curve rises into
    the peak and descends again after it. ``rise``: peak value minus the
    lowest value before the peak; ``fall``: peak value minus the lowest value
    after it (both in the curve's own unit; 0 where there is no such side).
    """
    i = peak_index(values)
    v = np.asarray(values, dtype=float)
    before = v[:i][np.isfinite(v[:i])]
    after = v[i + 1 :][np.isfinite(v[i + 1 :])]
    return {
        "peak_width": float(widths[i]),
        "peak_value": float(v[i]),
        "interior": bool(0 < i < len(v) - 1 and v[-1] < v[i]),
        "rise": float(v[i] - before.min()) if before.size else 0.0,
        "fall": float(v[i] - after.min()) if after.size else 0.0,
    }


def sweep_taus(rows: Sequence[Mapping[str, Any]], against: str, measures: Sequence[str]) -> dict[str, float]:
    """Kendall tau over the sweep's models between ``against`` (e.g. 'width', 'test_loss') and each measure."""
    ref = [r[against] for r in rows]
    return {m: kendall_tau(ref, [r[m] for r in rows]) for m in measures}


def plot_sweep(rows: Sequence[Mapping[str, Any]], panels: Sequence[tuple[str, str]], title: str):
    """A figure with one panel per ``(column, label)`` over width (log2 x axis); returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    import harness.report.plots  # noqa: F401  (headless backend)

    n = len(panels)
    cols = min(3, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    widths = [r["width"] for r in rows]
    for ax, (col, label) in zip(axes.flat, panels, strict=False):
        vals = [r.get(col, float("nan")) for r in rows]
        ax.plot(widths, vals, "o-")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("hidden width")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
