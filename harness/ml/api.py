"""User entry point: score generalization measures over a family of trained models.

A *family* is a list of :class:`FamilyMember` (a trained ``nn.Module`` with its
train and test data, its hyperparameters, and whether its training
converged). :func:`evaluate_family` computes, for every member, train/test
loss (mean cross-entropy, nats) and error, the two generalization gaps
(``loss_gap = test_loss - train_loss``, ``error_gap = test_err - train_err``)
and each measure on the TRAIN data only; then, over the included members, the
Kendall tau-b of every measure against both gaps with a percentile bootstrap
95 % CI (resampling models).

Orientation: every measure is reported *as defined*, with the paper's sign
conventions: prunability is the fraction of weights that must be kept, so a
HIGHER value means less robust to pruning and the paper's claim is
tau(prunability, gap) > 0; perturbation measures are 1/sigma^2 (sharper =
larger), also expected positive; Frobenius norm is reported as is.

Exclusions: a member with ``converged=False`` (e.g. train CE far above the
target: its prunability is meaningless) or with a non-finite measure is
excluded from every correlation and listed in ``report.excluded`` with the
reason; ``converged=None`` means unknown and is included.

Statistics (the paper's Table 1 and 2), over the included members:

- ``report.correlations[measure][gap]``: Kendall tau-b (``tau``) with its
  95 % bootstrap CI (``ci_low``, ``ci_high``), ``adj_r2`` (adjusted R^2 of the
  linear fit gap ~ measure) and ``n``;
- when the members' hyperparameters form a COMPLETE, UNIQUE grid (checked
  with :func:`harness.ml.stats.validate_grid` over the hyperparameters that
  vary, or over ``grid_axes`` if given): ``report.cmi[measure][gap]`` (PGDL's
  conditional mutual information; needs at least two axes) and
  ``report.granulated[measure][gap]`` (Jiang et al.'s ``psi`` per axis and
  ``Psi``). Otherwise they are empty and ``report.grid["reason"]`` says why
  (e.g. which settings are missing -- an excluded member leaves a hole).

Example (runs in about ten seconds on one core)::

    import torch
    from harness.ml.api import FamilyMember, evaluate_family
    from harness.ml.data import load_dataset
    from harness.ml.models import build_model
    from harness.ml.training import TrainConfig, train

    torch.set_num_threads(1)
    data = load_dataset("digits")
    family = []
    for width in (8, 32):
        for lr in (0.05, 0.1):
            for seed in (0, 1):
                model = build_model("mlp", data.in_features, data.n_classes, width=width, depth=1, seed=seed)
                res = train(model, data, TrainConfig(lr=lr, max_epochs=20, target_train_loss=0.05), seed=seed)
                family.append(FamilyMember(model, (data.x_train, data.y_train), (data.x_test, data.y_test),
                                           {"width": width, "lr": lr, "seed": seed}, converged=res.converged))
    report = evaluate_family(family, measures=("prunability", "frobenius"), n_boot=200)
    print(report.correlations["prunability"]["loss_gap"])  # {'tau': ..., 'ci_low': ..., 'adj_r2': ..., 'n': 8}
    print(report.grid)  # {'axes': ['width', 'lr', 'seed'], 'complete': True, 'reason': ''} (or why not)
    print(report.cmi.get("prunability"), report.granulated.get("prunability"))
    print(report.to_csv())
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.ml.registry import GAPS, MeasureFn, functions
from harness.ml.stats import (
    GridError,
    adjusted_r2,
    bootstrap_ci,
    conditional_mutual_information,
    generalization_gaps,
    granulated_kendall,
    kendall_tau,
    validate_grid,
)
from harness.ml.training import evaluate

Tensors = tuple[torch.Tensor, torch.Tensor]


MEASURES: dict[str, MeasureFn] = functions()
"""name -> fn(model, x_train, y_train, alpha): a view of :data:`harness.ml.registry.REGISTRY`."""
DEFAULT = (
    "prunability",
    "random_prunability",
    "perturbation_absolute",
    "perturbation_magnitude",
    "frobenius",
)


@dataclass
class FamilyMember:
    """One trained model of a family. ``train``/``test``: (x float32 [n, ...], y int64 [n])."""

    model: nn.Module
    train: Tensors
    test: Tensors
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    converged: bool | None = None


@dataclass
class FamilyReport:
    """Per-model rows, exclusions with reasons, and the statistics of each measure vs each gap.

    ``correlations[m][g]``: tau, ci_low, ci_high, adj_r2, n. ``grid``: ``axes`` (the hyperparameters
    scored as grid axes), ``complete`` (a complete unique grid over the included members) and
    ``reason`` (why CMI / psi are absent, '' when present). ``cmi[m][g]``: PGDL CMI (complete grid with
    >= 2 axes only). ``granulated[m][g]``: ``{"psi": {axis: value}, "Psi": value}`` (complete grid only).
    """

    rows: list[dict[str, Any]]
    excluded: list[dict[str, Any]]
    correlations: dict[str, dict[str, dict[str, float]]]
    measures: tuple[str, ...]
    alpha: float
    grid: dict[str, Any] = field(
        default_factory=lambda: {"axes": [], "complete": False, "reason": "no grid axes given"}
    )
    cmi: dict[str, dict[str, float]] = field(default_factory=dict)
    granulated: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def n_included(self) -> int:
        return len(self.rows) - len(self.excluded)

    def included_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r.get("excluded_reason")]

    def to_csv(self) -> str:
        cols: list[str] = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in self.rows:
            w.writerow(r)
        return buf.getvalue()

    def correlation_rows(self) -> list[dict[str, Any]]:
        out = []
        for m, by_gap in self.correlations.items():
            for gap, c in by_gap.items():
                row = {"measure": m, "gap": gap, **c}
                if m in self.cmi:
                    row["cmi"] = self.cmi[m][gap]
                if m in self.granulated:
                    g = self.granulated[m][gap]
                    row["Psi"] = g["Psi"]
                    row.update({f"psi[{a}]": v for a, v in g["psi"].items()})
                out.append(row)
        return out

    def to_json(self) -> str:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return json.dumps(
            clean(
                {
                    "alpha": self.alpha,
                    "measures": list(self.measures),
                    "n_models": len(self.rows),
                    "n_included": self.n_included,
                    "n_excluded": len(self.excluded),
                    "rows": self.rows,
                    "excluded": self.excluded,
                    "correlations": self.correlations,
                    "grid": self.grid,
                    "cmi": self.cmi,
                    "granulated": self.granulated,
                }
            ),
            indent=2,
            sort_keys=True,
        )


def correlate(
    rows: Sequence[Mapping[str, Any]],
    measures: Iterable[str],
    gaps: Iterable[str] = GAPS,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """tau-b of each measure column vs each gap column over ``rows``, with a 95 % percentile bootstrap CI,
    and the adjusted R^2 of the linear fit gap ~ measure (``adj_r2``; NaN for n < 3 or a constant gap)."""
    rows = list(rows)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for m in measures:
        out[m] = {}
        for g in gaps:
            xs = [float(r[m]) for r in rows]
            ys = [float(r[g]) for r in rows]
            tau = float(kendall_tau(xs, ys)) if len(rows) >= 2 else float("nan")
            lo, hi = (
                bootstrap_ci(xs, ys, n_boot=n_boot, seed=seed) if len(rows) >= 3 else (math.nan, math.nan)
            )
            out[m][g] = {
                "tau": tau,
                "ci_low": lo,
                "ci_high": hi,
                "adj_r2": adjusted_r2(xs, ys) if rows else math.nan,
                "n": len(rows),
            }
    return out


def correlate_within(
    rows: Sequence[Mapping[str, Any]], measure: str, gap: str, by: str
) -> dict[str, dict[str, float]]:
    """tau-b of ``measure`` vs ``gap`` inside each group of rows sharing the value of ``by``.

    Shows whether a family-wide tau is carried by one hyperparameter (e.g. width) or also holds within
    its groups. Returns {str(group value): {"tau": ..., "n": ...}}.
    """
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get(by), []).append(r)
    out = {}
    for value, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        xs = [float(r[measure]) for r in members]
        ys = [float(r[gap]) for r in members]
        out[str(value)] = {
            "tau": float(kendall_tau(xs, ys)) if len(members) >= 2 else math.nan,
            "n": len(members),
        }
    return out


def paired_tau_difference(
    rows: Sequence[Mapping[str, Any]],
    measure_a: str,
    measure_b: str,
    gap: str,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """tau(a, gap) - tau(b, gap) with a paired percentile bootstrap CI (the same resampled models for both).

    Answers "does measure a predict the gap better than b on this family" with its uncertainty.
    """
    import numpy as np

    a = np.array([float(r[measure_a]) for r in rows])
    b = np.array([float(r[measure_b]) for r in rows])
    g = np.array([float(r[gap]) for r in rows])
    n = len(g)
    delta = float(kendall_tau(a, g) - kendall_tau(b, g)) if n >= 2 else math.nan
    if n < 3:
        return {"delta": delta, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        v = kendall_tau(a[idx], g[idx]) - kendall_tau(b[idx], g[idx])
        if np.isfinite(v):
            values.append(v)
    lo_q = (1 - level) / 2
    lo, hi = (
        (float(np.quantile(values, lo_q)), float(np.quantile(values, 1 - lo_q)))
        if values
        else (math.nan, math.nan)
    )
    return {"delta": delta, "ci_low": lo, "ci_high": hi, "n": n}


def exclusion_reason(row: Mapping[str, Any], measures: Iterable[str]) -> str:
    """Why a row is excluded from scoring ('' if it is not)."""
    if row.get("converged") is False:
        target = row.get("target_train_loss")
        extra = f" > target {target:g}" if isinstance(target, (int, float)) else ""
        return f"not converged (train CE {float(row.get('train_loss', math.nan)):.4g}{extra})"
    for m in list(measures) + list(GAPS):
        v = row.get(m)
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            return f"non-finite {m} ({v!r})"
    return ""


def grid_statistics(
    included: Sequence[Mapping[str, Any]],
    measures: Iterable[str],
    axes: Sequence[str],
    n_excluded: int = 0,
) -> tuple[dict[str, Any], dict[str, dict[str, float]], dict[str, dict[str, dict[str, Any]]]]:
    """(grid, cmi, granulated) over the included rows, PGDL-strict: only on a complete unique grid.

    ``grid["reason"]`` says why a statistic is absent: no varying hyperparameter, the grid is
    incomplete or has duplicates (the :class:`harness.ml.stats.GridError` message names the missing or
    duplicated settings; ``n_excluded`` members excluded from scoring are mentioned, as they leave holes),
    or only one axis (CMI conditions on pairs of axes; psi is still given).
    """
    axes = list(axes)
    measures = list(measures)
    grid: dict[str, Any] = {"axes": axes, "complete": False, "reason": ""}
    if not axes:
        grid["reason"] = "no hyperparameter varies across the included members: not a grid (no CMI, no psi)"
        return grid, {}, {}
    try:
        validate_grid(included, axes)
    except (GridError, TypeError) as exc:
        holes = f" ({n_excluded} member(s) excluded from scoring leave holes)" if n_excluded else ""
        grid["reason"] = f"no CMI / psi: the included members are not a complete unique grid{holes}: {exc}"
        return grid, {}, {}
    grid["complete"] = True
    granulated: dict[str, dict[str, dict[str, Any]]] = {}
    cmi: dict[str, dict[str, float]] = {}
    for m in measures:
        granulated[m] = {}
        for g in GAPS:
            res = granulated_kendall(included, axes, m, g, strict=True)
            granulated[m][g] = {"psi": res.psi, "Psi": res.Psi}
        if len(axes) >= 2:
            cmi[m] = {
                g: conditional_mutual_information(included, axes, m, g, strict=True).score for g in GAPS
            }
    if len(axes) < 2:
        grid["reason"] = f"no CMI: it conditions on pairs of axes and only {axes} varies (psi given)"
    elif len(axes) == 2 and all(not math.isfinite(v) for by in cmi.values() for v in by.values()):
        grid["reason"] = (
            "CMI is NaN: with exactly two axes, conditioning on both leaves one model per cell, so H(V_g) = 0 "
            "in every cell (PGDL needs a third axis, e.g. seeds)"
        )
    return grid, cmi, granulated


def report_from_rows(
    rows: Sequence[Mapping[str, Any]],
    measures: Sequence[str],
    alpha: float = 0.10,
    n_boot: int = 1000,
    seed: int = 0,
    grid_axes: Sequence[str] | None = None,
) -> FamilyReport:
    """Score an already measured table (e.g. the zoo's rows): exclusions, then :func:`correlate`.

    ``grid_axes``: the row columns that are the family's hyperparameter axes; when given, CMI and
    granulated psi are computed if the included rows form a complete unique grid over them
    (:func:`grid_statistics`). Without it the rows' columns are not assumed to be hyperparameters.
    """
    rows = [dict(r) for r in rows]
    excluded = []
    for r in rows:
        reason = exclusion_reason(r, measures)
        r["excluded_reason"] = reason
        if reason:
            excluded.append({**r, "reason": reason})
    included = [r for r in rows if not r["excluded_reason"]]
    rep = FamilyReport(
        rows, excluded, correlate(included, measures, n_boot=n_boot, seed=seed), tuple(measures), alpha
    )
    if grid_axes is not None:
        rep.grid, rep.cmi, rep.granulated = grid_statistics(
            included, measures, grid_axes, n_excluded=len(excluded)
        )
    return rep


def varying_hyperparameters(entries: Sequence[FamilyMember]) -> list[str]:
    """Hyperparameter names (first-seen order) whose value is not the same for every member."""
    names: list[str] = []
    for e in entries:
        names += [k for k in e.hyperparameters if k not in names]
    out = []
    for k in names:
        values = [repr(e.hyperparameters.get(k, "<absent>")) for e in entries]
        if len(set(values)) > 1:
            out.append(k)
    return out


def evaluate_family(
    entries: Iterable[FamilyMember],
    measures: Sequence[str] | Mapping[str, MeasureFn] = DEFAULT,
    alpha: float = 0.10,
    n_boot: int = 1000,
    seed: int = 0,
    grid_axes: Sequence[str] | None = None,
) -> FamilyReport:
    """Measure every member on its TRAIN data and score each measure against both gaps.

    ``measures``: names from :data:`MEASURES` (the registry, :mod:`harness.ml.registry`), or a mapping name -> ``fn(model, x_train, y_train, alpha)``.
    ``grid_axes``: the hyperparameters to treat as grid axes (default: those that vary across the
    members); CMI and psi are computed when the included members form a complete grid over them.
    Raises ValueError on an unknown measure name, an empty family, or malformed members.
    """
    if isinstance(measures, Mapping):
        fns = dict(measures)
    else:
        unknown = [m for m in measures if m not in MEASURES]
        if unknown:
            raise ValueError(f"unknown measure(s) {unknown}; known: {sorted(MEASURES)}")
        fns = {m: MEASURES[m] for m in measures}
    entries = list(entries)
    if not entries:
        raise ValueError("evaluate_family needs at least one FamilyMember")
    for i, e in enumerate(entries):
        if not isinstance(e, FamilyMember):
            raise ValueError(f"entry {i} is a {type(e).__name__}, expected FamilyMember")
    axes = list(grid_axes) if grid_axes is not None else varying_hyperparameters(entries)
    reserved = {"index", "converged", "train_loss", "test_loss", "train_err", "test_err", *GAPS, *fns}
    clash = sorted({k for e in entries for k in e.hyperparameters} & reserved)
    if clash:
        raise ValueError(f"hyperparameter name(s) {clash} clash with report columns; rename them")
    missing_axes = sorted({a for a in axes for e in entries if a not in e.hyperparameters})
    if missing_axes:
        raise ValueError(f"grid axis/axes {missing_axes} missing from some members' hyperparameters")
    rows = []
    for i, e in enumerate(entries):
        (xtr, ytr), (xte, yte) = e.train, e.test
        if len(xtr) != len(ytr) or len(xte) != len(yte):
            raise ValueError(f"entry {i}: x and y lengths differ")
        train_loss, train_acc = evaluate(e.model, xtr, ytr)
        test_loss, test_acc = evaluate(e.model, xte, yte)
        row: dict[str, Any] = {"index": i, **e.hyperparameters, "converged": e.converged}
        row.update(train_loss=train_loss, test_loss=test_loss, train_err=1 - train_acc, test_err=1 - test_acc)
        row.update(generalization_gaps(train_loss, test_loss, row["train_err"], row["test_err"]))
        for name, fn in fns.items():
            t0 = time.perf_counter()
            row[name] = float(fn(e.model, xtr, ytr, alpha))
            row[f"time_{name}_s"] = time.perf_counter() - t0
        rows.append(row)
    return report_from_rows(rows, list(fns), alpha=alpha, n_boot=n_boot, seed=seed, grid_axes=axes)
