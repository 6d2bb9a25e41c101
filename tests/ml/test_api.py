import csv
import io
import json
import math

import pytest

from harness.ml.api import FamilyMember, evaluate_family, report_from_rows
from harness.ml.stats import kendall_tau

from ._tiny import tiny_trained


def _family():
    out = []
    for width, epochs in [(4, 10), (8, 15), (16, 15), (8, 25)]:
        model, data, res = tiny_trained("mlp", width, 1, epochs=epochs)
        out.append(
            FamilyMember(
                model,
                (data.x_train, data.y_train),
                (data.x_test, data.y_test),
                {"width": width, "epochs": epochs},
                converged=None,
            )
        )
    return out


def test_evaluate_family_rows_and_correlations():
    fam = _family()
    fam[3].converged = False
    rep = evaluate_family(fam, measures=("prunability", "frobenius", "params"), n_boot=50)
    assert len(rep.rows) == 4 and rep.n_included == 3
    assert rep.excluded[0]["reason"].startswith("not converged")
    inc = rep.included_rows()
    for r in rep.rows:
        assert r["loss_gap"] == pytest.approx(r["test_loss"] - r["train_loss"])
        assert r["error_gap"] == pytest.approx(r["test_err"] - r["train_err"])
        assert 0 < r["prunability"] <= 1
    c = rep.correlations["prunability"]["loss_gap"]
    assert c["n"] == 3
    assert c["tau"] == pytest.approx(
        kendall_tau([r["prunability"] for r in inc], [r["loss_gap"] for r in inc])
    )
    assert rep.correlations["params"]["loss_gap"]["n"] == 3
    parsed = list(csv.DictReader(io.StringIO(rep.to_csv())))
    assert len(parsed) == 4 and "prunability" in parsed[0]
    js = json.loads(rep.to_json())
    assert js["n_excluded"] == 1 and set(js["correlations"]) == {"prunability", "frobenius", "params"}


def test_custom_measure_and_errors():
    fam = _family()[:3]
    rep = evaluate_family(fam, measures={"depth_const": lambda m, x, y, a: 1.0}, n_boot=10)
    assert math.isnan(rep.correlations["depth_const"]["loss_gap"]["tau"])  # constant measure: tau undefined
    with pytest.raises(ValueError, match="unknown measure"):
        evaluate_family(fam, measures=("sharpness_magic",))
    with pytest.raises(ValueError, match="at least one"):
        evaluate_family([])
    with pytest.raises(ValueError, match="expected FamilyMember"):
        evaluate_family([("not", "a", "member")])


def test_nonfinite_measure_is_excluded_with_reason():
    rows = [
        {"converged": True, "m": float(i), "loss_gap": float(i), "error_gap": float(i), "train_loss": 0.0}
        for i in range(5)
    ]
    rows[2]["m"] = float("nan")
    rep = report_from_rows(rows, ["m"], n_boot=20)
    assert rep.n_included == 4 and "non-finite m" in rep.excluded[0]["reason"]
    assert rep.correlations["m"]["loss_gap"]["tau"] == pytest.approx(1.0)


def test_correlate_within_groups():
    from harness.ml.api import correlate_within

    rows = [
        {"w": w, "m": m, "g": g}
        for w, m, g in [(1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 1, 3), (2, 2, 2), (2, 3, 1)]
    ]
    out = correlate_within(rows, "m", "g", "w")
    assert out["1"] == {"tau": pytest.approx(1.0), "n": 3}
    assert out["2"]["tau"] == pytest.approx(-1.0)


def test_paired_tau_difference():
    from harness.ml.api import paired_tau_difference

    rows = [{"a": i, "b": -i, "g": i} for i in range(8)]
    d = paired_tau_difference(rows, "a", "b", "g", n_boot=100)
    assert d["delta"] == pytest.approx(2.0) and d["ci_low"] == pytest.approx(2.0) and d["n"] == 8
    same = paired_tau_difference(rows, "a", "a", "g", n_boot=50)
    assert same["delta"] == 0 and same["ci_low"] == same["ci_high"] == 0


def _docstring_example() -> str:
    import textwrap

    import harness.ml.api as api

    block = api.__doc__.split("Example (", 1)[1].split("::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_module_docstring_example_runs_and_reports_grid_statistics(capsys):
    code = _docstring_example()
    assert "evaluate_family" in code and "report.cmi" in code
    namespace: dict = {}
    exec(compile(code, "harness.ml.api docstring", "exec"), namespace)
    report = namespace["report"]
    out = capsys.readouterr().out
    assert "adj_r2" in out and "index,width,lr,seed" in out
    c = report.correlations["prunability"]["loss_gap"]
    assert {"tau", "ci_low", "ci_high", "adj_r2", "n"} <= set(c)
    if report.grid["complete"]:
        assert report.grid["axes"] == ["width", "lr", "seed"] and report.grid["reason"] == ""
        assert set(report.granulated["prunability"]["loss_gap"]["psi"]) == {"width", "lr", "seed"}
        assert math.isfinite(report.cmi["prunability"]["loss_gap"])
    else:  # an unconverged member leaves a hole: the report says which setting is missing
        assert "missing setting" in report.grid["reason"] and not report.cmi


def _grid_rows(complete: bool = True):
    rows = []
    for w in (1, 2):
        for lr in (0.1, 0.2):
            for seed in (0, 1):
                m = w + lr + 0.01 * seed
                rows.append(
                    {
                        "width": w,
                        "lr": lr,
                        "seed": seed,
                        "converged": True,
                        "m": m,
                        "loss_gap": m * 2 + 0.001 * seed,
                        "error_gap": m,
                        "train_loss": 0.0,
                    }
                )
    if not complete:
        rows[0]["converged"] = False
    return rows


def test_report_from_rows_grid_statistics_match_the_stats_module():
    from harness.ml.stats import adjusted_r2, conditional_mutual_information, granulated_kendall

    rows = _grid_rows()
    axes = ["width", "lr", "seed"]
    rep = report_from_rows(rows, ["m"], n_boot=20, grid_axes=axes)
    assert rep.grid == {"axes": axes, "complete": True, "reason": ""}
    assert rep.correlations["m"]["loss_gap"]["adj_r2"] == pytest.approx(
        adjusted_r2([r["m"] for r in rows], [r["loss_gap"] for r in rows])
    )
    assert rep.cmi["m"]["loss_gap"] == pytest.approx(
        conditional_mutual_information(rows, axes, "m", "loss_gap").score
    )
    gk = granulated_kendall(rows, axes, "m", "loss_gap")
    assert rep.granulated["m"]["loss_gap"] == {"psi": gk.psi, "Psi": gk.Psi}
    table = {r["gap"]: r for r in rep.correlation_rows()}
    assert table["loss_gap"]["cmi"] == rep.cmi["m"]["loss_gap"] and "psi[width]" in table["loss_gap"]
    assert json.loads(rep.to_json())["grid"]["complete"] is True


def test_grid_statistics_absent_with_the_reason():
    # an excluded member leaves a hole: PGDL-strict statistics are not computed, and the reason names it
    rep = report_from_rows(_grid_rows(complete=False), ["m"], n_boot=20, grid_axes=["width", "lr", "seed"])
    assert rep.n_included == 7 and not rep.grid["complete"] and rep.cmi == {} and rep.granulated == {}
    assert "1 missing setting" in rep.grid["reason"] and "width=1" in rep.grid["reason"]
    assert "excluded from scoring" in rep.grid["reason"]
    # one axis: psi but no CMI
    one = [r for r in _grid_rows() if r["lr"] == 0.1 and r["seed"] == 0]
    rep = report_from_rows(one, ["m"], n_boot=20, grid_axes=["width"])
    assert rep.grid["complete"] and "m" in rep.granulated and rep.cmi == {}
    assert "no CMI" in rep.grid["reason"]
    # no axes given: no grid statistics, said so
    rep = report_from_rows(_grid_rows(), ["m"], n_boot=20)
    assert rep.cmi == {} and rep.grid["reason"]


def test_evaluate_family_infers_the_varying_hyperparameters():
    from harness.ml.api import varying_hyperparameters

    fam = _family()  # width varies, epochs varies; both are inferred as axes
    assert varying_hyperparameters(fam) == ["width", "epochs"]
    rep = evaluate_family(fam, measures=("frobenius",), n_boot=10)
    assert (
        rep.grid["axes"] == ["width", "epochs"] and not rep.grid["complete"]
    )  # (8, 15) and (8, 25): no grid
    assert "missing setting" in rep.grid["reason"]
    with pytest.raises(ValueError, match="clash"):
        evaluate_family([FamilyMember(f.model, f.train, f.test, {"loss_gap": 1}) for f in fam[:2]])
