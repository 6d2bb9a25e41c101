"""Statistics of harness.ml.stats: Kendall tau-b, granulated Kendall, PGDL CMI, adjusted R^2, grids."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats
from hypothesis import assume, given
from hypothesis import strategies as st

from harness.ml.stats import (
    GridError,
    adjusted_r2,
    cmi_over_grids,
    conditional_mutual_information,
    granulated_kendall,
    kendall_tau,
    table1_statistics,
    validate_grid,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
vectors = st.lists(finite, min_size=2, max_size=30)
small_ints = st.lists(st.integers(-3, 3), min_size=2, max_size=30)  # many ties


def _nonconstant(v) -> bool:
    return len(set(v)) > 1


@given(vectors)
def test_tau_of_a_measure_with_itself_is_one(m):
    assume(_nonconstant(m))
    assert kendall_tau(m, m) == pytest.approx(1.0)


@given(vectors)
def test_tau_of_a_measure_with_its_negation_is_minus_one(m):
    assume(_nonconstant(m))
    assert kendall_tau(m, [-v for v in m]) == pytest.approx(-1.0)


@given(small_ints, small_ints)
def test_tau_is_invariant_under_strictly_monotone_transforms(a, b):
    # integer data so that the transforms stay strictly monotone in floating point
    n = min(len(a), len(b))
    a, b = np.array(a[:n], dtype=float), np.array(b[:n], dtype=float)
    assume(_nonconstant(a) and _nonconstant(b))
    t = kendall_tau(a, b)
    assert kendall_tau(a**3 + 7, np.exp2(b) - 100) == pytest.approx(t)
    assert kendall_tau(-a, b) == pytest.approx(-t)


@given(small_ints, small_ints)
def test_tau_agrees_with_scipy_tau_b_including_ties(a, b):
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ref = scipy.stats.kendalltau(a, b, variant="b").statistic
    ours = kendall_tau(a, b)
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-12)


def _grid(axes: dict[str, list], f_gap, f_measure, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for values in itertools.product(*axes.values()):
        row = dict(zip(axes, values, strict=True))
        row["gap"] = f_gap(row, rng)
        row["measure"] = f_measure(row, rng)
        rows.append(row)
    return rows


AXES = {"width": [8, 16, 32], "depth": [1, 2], "lr": [0.01, 0.1]}


def test_psi_where_only_one_axis_matters():
    rows = _grid(AXES, lambda r, _: float(r["width"]), lambda r, _: float(r["width"]) ** 2)
    res = granulated_kendall(rows, list(AXES), "measure", "gap")
    assert res.psi["width"] == pytest.approx(1.0)
    # along the other axes the gap is constant: tau undefined in every group -> psi NaN, not averaged
    assert np.isnan(res.psi["depth"]) and np.isnan(res.psi["lr"])
    assert res.groups_undefined["depth"] == 6 and res.groups_used["width"] == 4
    assert res.Psi == pytest.approx(1.0)
    rows_neg = _grid(AXES, lambda r, _: float(r["width"]), lambda r, _: -float(r["width"]))
    assert granulated_kendall(rows_neg, list(AXES), "measure", "gap").psi["width"] == pytest.approx(-1.0)


def test_psi_is_mean_of_per_group_tau():
    # gap = width + depth noise; measure = width only: psi_width = 1 exactly, psi_depth from ties -> NaN
    rows = _grid(AXES, lambda r, g: r["width"] + g.normal(), lambda r, _: float(r["width"]))
    res = granulated_kendall(rows, list(AXES), "measure", "gap")
    groups = {}
    for r in rows:
        groups.setdefault((r["depth"], r["lr"]), []).append(r)
    expected = np.mean(
        [kendall_tau([m["measure"] for m in g], [m["gap"] for m in g]) for g in groups.values()]
    )
    assert res.psi["width"] == pytest.approx(expected)


def test_validate_grid_names_missing_and_duplicated_settings():
    rows = _grid(AXES, lambda r, _: 0.0, lambda r, _: 0.0)
    assert validate_grid(rows, list(AXES)) == {"width": [8, 16, 32], "depth": [1, 2], "lr": [0.01, 0.1]}
    broken = [r for r in rows if not (r["width"] == 16 and r["depth"] == 2 and r["lr"] == 0.1)] + [rows[0]]
    with pytest.raises(GridError) as err:
        validate_grid(broken, list(AXES))
    msg = str(err.value)
    assert "width=16, depth=2, lr=0.1" in msg and "missing" in msg
    assert "width=8, depth=1, lr=0.01" in msg and "duplicated" in msg
    assert err.value.missing == [(16, 2, 0.1)] and err.value.duplicated == [(8, 1, 0.01)]
    with pytest.raises(GridError):
        granulated_kendall(broken, list(AXES), "measure", "gap")
    with pytest.raises(GridError):
        conditional_mutual_information(broken[:-1], list(AXES), "measure", "gap")


def test_psi_non_strict_uses_complete_sub_grids_and_counts_the_rest():
    rows = _grid(AXES, lambda r, _: float(r["width"]), lambda r, _: float(r["width"]))
    partial = [r for r in rows if not (r["width"] == 16 and r["depth"] == 2 and r["lr"] == 0.1)]
    res = granulated_kendall(partial, list(AXES), "measure", "gap", strict=False)
    assert res.groups_incomplete["width"] == 1 and res.groups_used["width"] == 3
    assert res.psi["width"] == pytest.approx(1.0)


def test_cmi_is_zero_for_a_measure_explained_by_another_hyperparameter():
    # the measure depends only on lr, the gap only on width (+noise): conditioning on (width, lr)
    # leaves no information: CMI = 0 (up to PGDL's 1e-12 in the entropy)
    rows = _grid(AXES, lambda r, g: r["width"] + 0.1 * g.normal(), lambda r, g: r["lr"])
    res = conditional_mutual_information(rows, list(AXES), "measure", "gap")
    assert res.score == pytest.approx(0.0, abs=1e-9)
    assert 0.0 <= res.score <= 1.0


def test_cmi_of_a_constant_measure_is_zero_and_of_the_gap_itself_is_positive():
    rows = _grid(AXES, lambda r, g: r["width"] * g.uniform(0.5, 1.5), lambda r, _: 1.0)
    assert conditional_mutual_information(rows, list(AXES), "measure", "gap").score == pytest.approx(
        0, abs=1e-9
    )
    for r in rows:
        r["m2"] = r["gap"]
    res = conditional_mutual_information(rows, list(AXES), "m2", "gap")
    assert 0 < res.score <= 1.0 + 1e-9


@given(st.integers(0, 2**31 - 1))
def test_cmi_lies_in_unit_interval(seed):
    rows = _grid(AXES, lambda r, g: g.normal(), lambda r, g: g.normal(), seed=seed)
    score = conditional_mutual_information(rows, list(AXES), "measure", "gap").score
    assert -1e-9 <= score <= 1.0 + 1e-9


def test_cmi_hand_computed_two_axes():
    # 2x2 grid; per PGDL the cells are (a_i, b_i, a_j, b_j): every cell holds one ordered pair
    # (i, j) -> in each non-trivial cell the 2x2 table has one entry -> MI = 0, H(V_g) = 0.
    axes = {"a": [0, 1], "b": [0, 1]}
    rows = _grid(axes, lambda r, g: g.normal(), lambda r, g: g.normal())
    res = conditional_mutual_information(rows, ["a", "b"], "measure", "gap")
    assert np.isnan(res.score) and res.argmin is None


def test_adjusted_r2_known_values():
    x = np.arange(10.0)
    assert adjusted_r2(x, 2 * x + 1) == pytest.approx(1.0)
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    r2 = scipy.stats.linregress(np.arange(5.0), y).rvalue ** 2
    assert adjusted_r2(np.arange(5.0), y) == pytest.approx(1 - (1 - r2) * 4 / 3)
    assert np.isnan(adjusted_r2([1.0, 2.0], [1.0, 2.0]))  # n - p - 1 = 0
    with pytest.raises(ValueError):
        adjusted_r2([1.0, 2.0, 3.0], [1.0, 2.0])


def _keyed_grid(seed: int, prefix: str) -> list[dict]:
    rows = _grid(AXES, lambda r, g: g.normal() + r["width"], lambda r, g: g.normal() + r["width"], seed=seed)
    for i, r in enumerate(rows):
        r["key"] = f"{prefix}{i}"
    return rows


def test_cmi_over_grids_is_pgdl_exact_on_complete_grids_and_flags_incomplete_ones():
    g1, g2 = _keyed_grid(1, "a"), _keyed_grid(2, "b")
    specs = [(list(AXES), {r["key"] for r in g1}), (list(AXES), {r["key"] for r in g2})]
    res = cmi_over_grids(g1 + g2, specs, "measure", "gap")
    exact = [
        conditional_mutual_information(g, list(AXES), "measure", "gap", strict=True).score for g in (g1, g2)
    ]
    assert res["cmi"] == pytest.approx(np.mean(exact)) and res["cmi_grids"] == 2
    assert res["cmi_pgdl_exact"] is True and res["cmi_missing_models"] == 0 and res["cmi_empty_cells"] == 0
    # drop one model (e.g. unconverged): non-strict score, flagged, missing counted
    res = cmi_over_grids(g1[1:] + g2, specs, "measure", "gap")
    assert res["cmi_pgdl_exact"] is False and res["cmi_missing_models"] == 1
    assert "NOT PGDL-exact" in res["cmi_note"]
    # removing every model with (width=8, depth=1) empties conditioning cells: skipped and counted
    holes = [r for r in g1 if not (r["width"] == 8 and r["depth"] == 1)]
    assert cmi_over_grids(holes + g2, specs, "measure", "gap")["cmi_empty_cells"] > 0
    assert res["cmi_per_grid"][1] == pytest.approx(exact[1])


def test_table1_statistics_combines_tau_r2_and_cmi():
    g = _keyed_grid(3, "k")
    out = table1_statistics(g, "measure", "gap", [(list(AXES), {r["key"] for r in g})], n_boot=50)
    assert out["tau"] == pytest.approx(kendall_tau([r["measure"] for r in g], [r["gap"] for r in g]))
    assert out["adj_r2"] == pytest.approx(adjusted_r2([r["measure"] for r in g], [r["gap"] for r in g]))
    assert out["cmi"] == pytest.approx(conditional_mutual_information(g, list(AXES), "measure", "gap").score)
    assert out["cmi_pgdl_exact"] is True and out["n"] == len(g)


def test_adjusted_r2_log_scale():
    from harness.ml.stats import adjusted_r2, adjusted_r2_log

    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 1e5])
    y = np.log10(x) * 2.0 + 1.0  # exactly linear in log10(x)
    assert adjusted_r2_log(x, y) == pytest.approx(1.0)
    assert adjusted_r2(x, y) < 0.9  # the raw-scale fit is dominated by the largest value
    assert np.isnan(adjusted_r2_log(np.array([0.0, 1.0, 2.0, 3.0]), np.arange(4.0)))


def test_tau_per_grid_and_pooled():
    from harness.ml.stats import kendall_tau, tau_per_grid

    rows = [{"key": f"a{i}", "m": i, "g": i} for i in range(5)]  # grid a: concordant
    rows += [{"key": f"b{i}", "m": i, "g": -i} for i in range(5)]  # grid b: discordant
    out = tau_per_grid(
        rows, [("a", {f"a{i}" for i in range(5)}), ("b", {f"b{i}" for i in range(6)})], "m", "g"
    )
    assert [r["family"] for r in out] == ["a", "b", "pooled (all grids)"]
    assert out[0]["tau"] == pytest.approx(1.0) and out[1]["tau"] == pytest.approx(-1.0)
    assert out[1]["n"] == 5 and out[1]["models_in_grid"] == 6
    assert out[2]["tau"] == pytest.approx(kendall_tau([r["m"] for r in rows], [r["g"] for r in rows]))
