"""Statistics over a family of models (the paper's and Jiang et al.'s).

Kendall tau-b (ties handled; cross-checked against scipy in tests), a
bootstrap confidence interval over models, grid validation, granulated
Kendall psi_i / Psi (Jiang et al. 2020), the PGDL conditional mutual
information, and adjusted R^2.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

GAPS = ("loss_gap", "error_gap")


def generalization_gaps(
    train_loss: float, test_loss: float, train_err: float, test_err: float
) -> dict[str, float]:
    """The one definition of both generalization gaps: ``loss_gap`` = test CE - train CE (nats) and
    ``error_gap`` = test error - train error (= train accuracy - test accuracy, PGDL's ``gen_gap``)."""
    return {"loss_gap": float(test_loss) - float(train_loss), "error_gap": float(test_err) - float(train_err)}


def kendall_tau(x, y) -> float:
    """Kendall's tau-b of two equal-length sequences (NaN if either is constant or n < 2)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D sequences of equal length, got {x.shape} and {y.shape}")
    n = x.size
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    dx = np.sign(x[i] - x[j])
    dy = np.sign(y[i] - y[j])
    concordant_minus_discordant = float(np.sum(dx * dy))
    n0 = i.size
    ties_x = float(np.sum(dx == 0))
    ties_y = float(np.sum(dy == 0))
    denom = np.sqrt((n0 - ties_x) * (n0 - ties_y))
    if denom == 0:
        return float("nan")
    return concordant_minus_discordant / denom


def bootstrap_ci(
    x, y, stat=kendall_tau, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat(x, y)``, resampling models with replacement."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    if n < 3:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        v = stat(x[idx], y[idx])
        if np.isfinite(v):
            values.append(v)
    if not values:
        return (float("nan"), float("nan"))
    lo = (1 - level) / 2
    return float(np.quantile(values, lo)), float(np.quantile(values, 1 - lo))


# ---------------------------------------------------------------------------
# Grids of models: validation, granulated Kendall (Jiang et al. 2020), CMI (PGDL)
# ---------------------------------------------------------------------------


class GridError(ValueError):
    """The family of models is not a complete, unique grid over the given axes."""

    def __init__(
        self, message: str, missing: list[tuple] | None = None, duplicated: list[tuple] | None = None
    ):
        super().__init__(message)
        self.missing = missing or []
        self.duplicated = duplicated or []


def _setting(row: Mapping[str, Any], axes: Sequence[str]) -> tuple:
    try:
        return tuple(row[a] for a in axes)
    except KeyError as exc:
        raise GridError(f"row has no value for axis {exc.args[0]!r}: {dict(row)}") from None


def _sort_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def grid_axes_values(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> dict[str, list]:
    """The sorted distinct values each axis takes over ``rows``."""
    return {a: sorted({row[a] for row in rows}, key=_sort_key) for a in axes}


def missing_settings(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> list[tuple]:
    """Settings (tuples of axis values, in ``axes`` order) of the full product grid absent from ``rows``."""
    values = grid_axes_values(rows, axes)
    present = {_setting(r, axes) for r in rows}
    return [s for s in product(*(values[a] for a in axes)) if s not in present]


def duplicated_settings(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> list[tuple]:
    """Settings that occur more than once in ``rows``."""
    count: dict[tuple, int] = defaultdict(int)
    for r in rows:
        count[_setting(r, axes)] += 1
    return [s for s, c in count.items() if c > 1]


def validate_grid(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> dict[str, list]:
    """Check that ``rows`` form a complete grid over ``axes`` with one row per setting.

    Returns the sorted values of each axis. Raises :class:`GridError` naming
    every missing and every duplicated setting (as ``axis=value`` lists).
    """
    if not axes:
        raise GridError("validate_grid needs at least one axis")
    if not rows:
        raise GridError("validate_grid got no rows")
    dup = duplicated_settings(rows, axes)
    miss = missing_settings(rows, axes)
    if dup or miss:

        def fmt(s: tuple) -> str:
            return "(" + ", ".join(f"{a}={v!r}" for a, v in zip(axes, s, strict=True)) + ")"

        parts = []
        if miss:
            parts.append(f"{len(miss)} missing setting(s): " + "; ".join(fmt(s) for s in miss))
        if dup:
            parts.append(f"{len(dup)} duplicated setting(s): " + "; ".join(fmt(s) for s in dup))
        raise GridError(
            f"not a complete unique grid over axes {list(axes)} ({len(rows)} rows): " + " | ".join(parts),
            missing=miss,
            duplicated=dup,
        )
    return grid_axes_values(rows, axes)


@dataclass
class GranulatedKendall:
    """Jiang et al.'s granulated Kendall coefficients.

    ``psi[axis]``: mean over the settings of the other axes of tau(measure, gap)
    over the models that differ only along ``axis`` (NaN if no such group has
    a defined tau). ``Psi``: mean of the finite ``psi`` values.
    ``groups_used[axis]``: groups averaged; ``groups_incomplete[axis]``:
    groups skipped because some value of ``axis`` was missing (non-strict
    mode); ``groups_undefined[axis]``: groups whose tau is undefined (a
    constant measure or gap in the group, tau NaN) and so not averaged.
    """

    psi: dict[str, float]
    Psi: float
    groups_used: dict[str, int] = field(default_factory=dict)
    groups_incomplete: dict[str, int] = field(default_factory=dict)
    groups_undefined: dict[str, int] = field(default_factory=dict)


def granulated_kendall(
    rows: Sequence[Mapping[str, Any]],
    axes: Sequence[str],
    measure: str,
    gap: str,
    strict: bool = True,
) -> GranulatedKendall:
    """psi_i per axis and Psi = mean_i psi_i (Jiang et al. 2020, arXiv:1912.02178, Sec. 6).

    ``rows`` are dicts holding the axis values and the keys ``measure`` and
    ``gap``. With ``strict`` the grid must be complete and unique
    (:func:`validate_grid`); without it, duplicates still raise but, for
    each axis, only the groups that contain every value of that axis are
    used (complete sub-grids) and the rest are counted in
    ``groups_incomplete``.
    """
    if strict:
        values = validate_grid(rows, axes)
    else:
        dup = duplicated_settings(rows, axes)
        if dup:
            raise GridError(f"duplicated settings over {list(axes)}: {dup}", duplicated=dup)
        values = grid_axes_values(rows, axes)
    psi: dict[str, float] = {}
    used: dict[str, int] = {}
    incomplete: dict[str, int] = {}
    undefined: dict[str, int] = {}
    for axis in axes:
        others = [a for a in axes if a != axis]
        groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[tuple(r[a] for a in others)].append(r)
        taus = []
        n_incomplete = n_undefined = 0
        for members in groups.values():
            if len({m[axis] for m in members}) < len(values[axis]):
                n_incomplete += 1
                continue
            t = kendall_tau([m[measure] for m in members], [m[gap] for m in members])
            if np.isfinite(t):
                taus.append(t)
            else:
                n_undefined += 1
        psi[axis] = float(np.mean(taus)) if taus else float("nan")
        used[axis] = len(taus)
        incomplete[axis] = n_incomplete
        undefined[axis] = n_undefined
    finite = [v for v in psi.values() if np.isfinite(v)]
    return GranulatedKendall(
        psi=psi,
        Psi=float(np.mean(finite)) if finite else float("nan"),
        groups_used=used,
        groups_incomplete=incomplete,
        groups_undefined=undefined,
    )


def _entropy_bits(counts: np.ndarray) -> float:
    """Entropy in bits of a count vector, as PGDL computes it (log2(p + 1e-12))."""
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p + 1e-12)))


def _mi_bits(table: np.ndarray) -> tuple[float, float]:
    """(I(V_g; V_mu), H(V_g)) in bits of a 2x2 count table (rows: V_g, columns: V_mu)."""
    total = table.sum()
    pg = table.sum(axis=1) / total
    pm = table.sum(axis=0) / total
    mi = 0.0
    for a in range(2):
        for b in range(2):
            joint = table[a, b] / total
            if joint > 0:
                mi += joint * np.log2(joint / (pg[a] * pm[b]))
    return float(mi), _entropy_bits(table.sum(axis=1))


@dataclass
class CMIResult:
    """PGDL conditional mutual information: ``score`` = min over ordered pairs of distinct axes.

    ``per_pair[(a, b)]``: normalised CMI conditioning on axes a and b;
    ``empty_cells[(a, b)]``: conditioning cells without any model pair (only
    possible in non-strict mode; PGDL itself would produce NaN there).
    """

    score: float
    per_pair: dict[tuple[str, str], float]
    empty_cells: dict[tuple[str, str], int]
    argmin: tuple[str, str] | None


def conditional_mutual_information(
    rows: Sequence[Mapping[str, Any]],
    axes: Sequence[str],
    measure: str,
    gap: str,
    strict: bool = True,
) -> CMIResult:
    """Normalised CMI between [gap_1 > gap_2] and [measure_1 > measure_2], as PGDL's scoring program.

    For each ordered pair of distinct axes (a, b): over all ordered pairs of
    models (including a model with itself, as PGDL does), the cell is the
    values of a and b of *both* models (|a|^2 |b|^2 cells); in each cell the
    2x2 mutual information I(V_g; V_mu) in bits; the mean over cells is
    divided by the mean over cells of H(V_g). The score is the minimum over
    pairs of axes; 0 = the measure adds no information beyond the two
    hyperparameters, 1 = it determines the ordering of the gaps.
    Strict mode requires a complete unique grid; otherwise empty cells are
    skipped and counted.
    """
    if len(axes) < 2:
        raise ValueError("CMI conditions on pairs of distinct axes: need at least two axes")
    values = validate_grid(rows, axes) if strict else grid_axes_values(rows, axes)
    g = np.array([float(r[gap]) for r in rows])
    m = np.array([float(r[measure]) for r in rows])
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(m))):
        raise ValueError(f"CMI needs finite {gap!r} and {measure!r} for every model")
    vg = (g[:, None] > g[None, :]).astype(int)  # [i, j] = gap_i > gap_j
    vm = (m[:, None] > m[None, :]).astype(int)
    per_pair: dict[tuple[str, str], float] = {}
    empty: dict[tuple[str, str], int] = {}
    for a in axes:
        for b in axes:
            if a == b:
                continue
            ia = {v: k for k, v in enumerate(values[a])}
            ib = {v: k for k, v in enumerate(values[b])}
            na, nb = len(ia), len(ib)
            ca = np.array([ia[r[a]] for r in rows])
            cb = np.array([ib[r[b]] for r in rows])
            # cell index of the ordered pair (i, j): (a_i, b_i, a_j, b_j)
            key_i = ca * nb + cb
            cell = key_i[:, None] * (na * nb) + key_i[None, :]
            n_cells = (na * nb) ** 2
            tables = np.zeros((n_cells, 2, 2))
            np.add.at(tables, (cell.ravel(), 1 - vg.ravel(), 1 - vm.ravel()), 1)
            mis, hs = [], []
            n_empty = 0
            for t in tables:
                if t.sum() == 0:
                    n_empty += 1
                    continue
                mi, h = _mi_bits(t)
                mis.append(mi)
                hs.append(h)
            if n_empty and strict:
                raise GridError(f"{n_empty} empty CMI cells for axes ({a}, {b}) in a validated grid")
            mean_h = float(np.mean(hs)) if hs else 0.0
            per_pair[(a, b)] = float(np.mean(mis)) / mean_h if mean_h > 0 else float("nan")
            empty[(a, b)] = n_empty
    finite = {k: v for k, v in per_pair.items() if np.isfinite(v)}
    if not finite:
        return CMIResult(float("nan"), per_pair, empty, None)
    arg = min(finite, key=finite.get)
    return CMIResult(finite[arg], per_pair, empty, arg)


def adjusted_r2(x, y) -> float:
    """Adjusted R^2 of the least-squares fit y ~ 1 + X: 1 - (1 - R^2)(n - 1)/(n - p - 1).

    ``x`` is one measure (n,) or several (n, p); ``y`` the gap (n,). NaN if
    n - p - 1 <= 0 or y is constant.
    """
    X = np.asarray(x, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.size:
        raise ValueError(
            f"adjusted_r2 needs x of shape (n,) or (n, p) and y of shape (n,), got {X.shape}, {y.shape}"
        )
    n, p = X.shape
    if n - p - 1 <= 0:
        return float("nan")
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0:
        return float("nan")
    A = np.column_stack([np.ones(n), X])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    ss_res = float(np.sum((y - A @ coef) ** 2))
    r2 = 1.0 - ss_res / ss_tot
    return 1.0 - (1.0 - r2) * (n - 1) / (n - p - 1)


def adjusted_r2_log(x, y) -> float:
    """Adjusted R^2 of y ~ 1 + log10(x): the fit on the log scale, for a measure spanning orders of magnitude
    (e.g. 1/sigma^2). NaN unless every x is finite and > 0."""
    X = np.asarray(x, dtype=float)
    if X.size == 0 or not np.all(np.isfinite(X)) or not np.all(X > 0):
        return float("nan")
    return adjusted_r2(np.log10(X), y)


def correlation_row(
    rows: Sequence[Mapping[str, Any]],
    measure: str,
    gap: str,
    axes: Sequence[str] | None = None,
    strict: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Table-1 statistics of one measure against one gap over a family of models.

    Kendall tau-b with a 95% bootstrap CI, adjusted R^2 of gap ~ measure on the raw scale (``adj_r2``, the
    one verdicts use) and on the log scale (``adj_r2_log``, gap ~ log10(measure); NaN unless the measure is
    > 0 everywhere), and (when ``axes`` has at least two axes) the PGDL CMI over those axes
    (``strict=False``: empty cells of an incomplete grid are skipped and counted
    in ``cmi_empty_cells``). Rows with a non-finite measure or gap are excluded
    and counted in ``excluded``.
    """
    ok = [r for r in rows if np.isfinite(float(r[measure])) and np.isfinite(float(r[gap]))]
    m = np.array([float(r[measure]) for r in ok])
    g = np.array([float(r[gap]) for r in ok])
    out: dict[str, Any] = {"measure": measure, "gap": gap, "n": len(ok), "excluded": len(rows) - len(ok)}
    out["tau"] = float(kendall_tau(m, g))
    out["tau_ci_lo"], out["tau_ci_hi"] = bootstrap_ci(m, g, n_boot=n_boot, seed=seed)
    out["adj_r2"] = adjusted_r2(m, g)
    out["adj_r2_log"] = adjusted_r2_log(m, g)
    if axes is not None and len(axes) >= 2:
        res = conditional_mutual_information(ok, axes, measure, gap, strict=strict)
        out["cmi"] = res.score
        out["cmi_argmin"] = "/".join(res.argmin) if res.argmin else ""
        out["cmi_empty_cells"] = int(sum(res.empty_cells.values()))
    return out


GridSpec = tuple[Sequence[str], Collection[str]]
"""One complete grid of a family: (its axes, the config key of every model the grid defines)."""


def row_config_key(row: Mapping[str, Any]) -> str:
    """The model config's key of a row (``ModelConfig.key``): ``config_key`` where the row has one.

    A row's ``key`` is the key its model is stored under, which is the config key for the per-model
    trainer and carries the trainer's name and version for the ensemble trainer; grids list config keys.
    """
    return str(row.get("config_key") or row["key"])


def cmi_over_grids(
    rows: Sequence[Mapping[str, Any]], grids: Sequence[GridSpec], measure: str, gap: str
) -> dict[str, Any]:
    """PGDL CMI of ``measure`` vs ``gap``, computed on each grid separately and averaged over the grids.

    A grid's rows are those whose config key (:func:`row_config_key`) is one of
    the grid's keys. A grid whose every model is present is scored exactly as
    PGDL does (``strict=True``: validated complete and unique). A grid with
    models missing (e.g. unconverged models excluded) is scored in non-strict
    mode: cells without any model pair are skipped and counted, which PGDL
    itself never does (its grids are complete) -- such a value is flagged
    with ``cmi_pgdl_exact = False`` and a ``cmi_note``.

    Returns ``cmi`` (mean over grids with a finite score), ``cmi_grids`` (how
    many), ``cmi_per_grid``, ``cmi_missing_models`` (over all grids),
    ``cmi_empty_cells``, ``cmi_pgdl_exact`` and ``cmi_note``.
    """
    scores, per_grid, empty, missing = [], [], 0, 0
    for axes, keys in grids:
        sub = [r for r in rows if row_config_key(r) in keys]
        n_missing = len(keys) - len(sub)
        missing += n_missing
        if len(sub) < 2 or len(axes) < 2:
            per_grid.append(float("nan"))
            continue
        ok = [r for r in sub if np.isfinite(float(r[measure])) and np.isfinite(float(r[gap]))]
        missing += len(sub) - len(ok)
        n_missing += len(sub) - len(ok)
        res = conditional_mutual_information(ok, list(axes), measure, gap, strict=n_missing == 0)
        per_grid.append(res.score)
        empty += int(sum(res.empty_cells.values()))
        if np.isfinite(res.score):
            scores.append(res.score)
    exact = missing == 0 and bool(scores)
    if exact:
        note = "PGDL-exact: every grid complete"
    elif scores:
        note = (
            f"NOT PGDL-exact: {missing} model(s) missing from the grids (e.g. unconverged, excluded); "
            f"{empty} empty conditioning cell(s) skipped"
        )
    else:
        note = "no grid could be scored (fewer than 2 models or 2 axes)"
    return {
        "cmi": float(np.mean(scores)) if scores else float("nan"),
        "cmi_grids": len(scores),
        "cmi_per_grid": per_grid,
        "cmi_missing_models": missing,
        "cmi_empty_cells": empty,
        "cmi_pgdl_exact": exact,
        "cmi_note": note,
    }


def table1_statistics(
    rows: Sequence[Mapping[str, Any]],
    measure: str,
    gap: str,
    grids: Sequence[GridSpec],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The paper's Table 1 statistics of one measure vs one gap over a family made of complete grids.

    Kendall tau-b with a 95% bootstrap CI and adjusted R^2 of gap ~ measure over
    all ``rows`` (:func:`correlation_row`); the PGDL CMI per grid, averaged over
    the grids (:func:`cmi_over_grids`, flagged when a grid is incomplete).
    """
    out = correlation_row(rows, measure, gap, n_boot=n_boot, seed=seed)
    out.update(cmi_over_grids(rows, grids, measure, gap))
    return out


def tau_per_grid(
    rows: Sequence[Mapping[str, Any]], grids: Sequence[tuple[str, Collection[str]]], measure: str, gap: str
) -> list[dict[str, Any]]:
    """Kendall tau (95% bootstrap CI) of ``measure`` vs ``gap`` inside each labelled grid, then pooled.

    ``grids``: (label, config keys); rows matched by :func:`row_config_key`. One row per grid (``family``, ``n`` present,
    ``models_in_grid``, ``tau``, ``ci95_low``, ``ci95_high``) and a last row for all ``rows`` together.
    """

    def row(label: str, sub: Sequence[Mapping[str, Any]], size: int) -> dict[str, Any]:
        st = correlation_row(sub, measure, gap)
        return {
            "family": label,
            "n": st["n"],
            "models_in_grid": size,
            "tau": st["tau"],
            "ci95_low": st["tau_ci_lo"],
            "ci95_high": st["tau_ci_hi"],
        }

    out = [row(label, [r for r in rows if row_config_key(r) in keys], len(keys)) for label, keys in grids]
    out.append(row("pooled (all grids)", rows, sum(len(k) for _, k in grids)))
    return out
