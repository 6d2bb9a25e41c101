"""Fig 3 curves (harness.ml.fig3) and sweep summaries (harness.ml.double_descent) on known cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.ml.double_descent import interior_peak, sweep_spec, sweep_taus
from harness.ml.fig3 import noise_lowers_test, prune_vs_noise_curves, summarise_curves

torch.set_num_threads(1)


def _model_and_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(100, 5)
    y = torch.randint(0, 3, (100,))
    return model, x, y


def test_curves_start_at_the_unpruned_loss_and_restore_the_weights():
    model, x, y = _model_and_data()
    before = [p.detach().clone() for p in model.parameters()]
    rows = prune_vs_noise_curves(model, x, y, x[:50], y[:50], fractions=(0.0, 0.5, 1.0), draws=3)
    with torch.no_grad():
        base = float(F.cross_entropy(model(x), y))
    assert rows[0]["prune_train_loss"] == pytest.approx(base)
    assert rows[0]["removed_norm"] == 0.0 and rows[0]["noise_train_loss"] == pytest.approx(base)
    weights = torch.cat([model[0].weight.detach().flatten(), model[2].weight.detach().flatten()])
    assert rows[2]["removed_norm"] == pytest.approx(float(weights.norm()), rel=1e-6)
    assert rows[1]["weights_pruned"] == round(0.5 * weights.numel())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    s = summarise_curves(rows)
    assert s["base_test_loss"] == rows[0]["prune_test_loss"]
    with pytest.raises(ValueError):
        prune_vs_noise_curves(model, x, y, x, y, fractions=(1.5,))


def test_summary_of_hand_made_curves():
    rows = [
        dict(
            fraction_pruned=0.0,
            prune_train_loss=1.0,
            prune_test_loss=2.0,
            noise_train_loss=1.0,
            noise_test_loss=2.0,
        ),
        dict(
            fraction_pruned=0.5,
            prune_train_loss=1.5,
            prune_test_loss=1.8,
            noise_train_loss=1.1,
            noise_test_loss=2.1,
        ),
        dict(
            fraction_pruned=0.9,
            prune_train_loss=3.0,
            prune_test_loss=3.0,
            noise_train_loss=1.3,
            noise_test_loss=2.5,
        ),
    ]
    s = summarise_curves(rows)
    assert s["best_prune_test_gain"] == pytest.approx(0.2) and s["best_prune_fraction"] == 0.5
    assert s["best_noise_test_gain"] == pytest.approx(-0.1)
    assert s["mean_prune_train_increase"] == pytest.approx(1.25)
    assert s["mean_noise_train_increase"] == pytest.approx(0.2)
    assert s["share_prune_hurts_train_more"] == 1.0


def test_peaks_and_taus_over_widths():
    widths = [4, 8, 16, 32, 64]
    assert interior_peak(widths, [1.0, 2.0, 3.0, 2.5, 2.0]) == {
        "peak_width": 16.0,
        "peak_value": 3.0,
        "interior": True,
        "rise": pytest.approx(2.0),
        "fall": pytest.approx(1.0),
    }
    mono = interior_peak(widths, [5.0, 4.0, 3.0, 2.0, 1.0])
    assert mono["interior"] is False and mono["rise"] == 0.0 and mono["fall"] == pytest.approx(4.0)
    # a peak at the widest net is not a double descent; nor is a plateau after the peak at the end
    assert interior_peak(widths, [1.0, 2.0, 3.0, 4.0, 5.0])["interior"] is False
    assert (
        interior_peak(widths, [1.0, 3.0, 2.0, 2.0, 3.0])["interior"] is False
    )  # first max at 8, last == max
    rows = [{"width": w, "a": -w, "b": w * w} for w in widths]
    assert sweep_taus(rows, "width", ["a", "b"]) == {"a": pytest.approx(-1.0), "b": pytest.approx(1.0)}
    assert [c.width for c in sweep_spec("smoke", "fig2").configs()] == list(
        sweep_spec("smoke", "fig2").widths
    )
    with pytest.raises(ValueError):
        sweep_spec("smoke", "fig9")


def test_curve_rows_carry_the_draws_and_standard_errors():
    model, x, y = _model_and_data()
    rows = prune_vs_noise_curves(model, x, y, x[:50], y[:50], fractions=(0.0, 0.5), draws=4)
    assert all(r["noise_draws"] == 4 for r in rows)
    assert rows[0]["noise_test_loss_sem"] == pytest.approx(0.0, abs=1e-7)  # zero-norm noise: all draws equal
    r = rows[1]
    # SEM (ddof 1) = population std (ddof 0) * sqrt(n / (n - 1)) / sqrt(n)
    assert r["noise_test_loss_sem"] == pytest.approx(r["noise_test_loss_std"] * (4 / 3) ** 0.5 / 2, rel=1e-9)
    single = prune_vs_noise_curves(model, x, y, x, y, fractions=(0.0, 0.5), draws=1)
    assert single[1]["noise_test_loss_sem"] == 0.0


def _curve(base_test: float, points: list[tuple[float, float, float]], draws: int = 5) -> list[dict]:
    rows = [
        dict(
            fraction_pruned=0.0,
            prune_test_loss=base_test,
            noise_test_loss=base_test,
            noise_test_loss_sem=0.0,
            noise_draws=draws,
        )
    ]
    for f, noise_test, sem in points:
        rows.append(
            dict(
                fraction_pruned=f,
                prune_test_loss=base_test,
                noise_test_loss=noise_test,
                noise_test_loss_sem=sem,
                noise_draws=draws,
            )
        )
    return rows


def test_noise_lowers_test_is_a_bonferroni_t_test():
    import scipy.stats

    # two models x two fractions = 4 tests, df = 4
    t_crit = scipy.stats.t.ppf(1 - 0.05 / 4, 4)
    curves = {
        "raises": _curve(1.0, [(0.5, 1.2, 0.01), (0.9, 2.0, 0.1)]),
        # mean gain 0.01 nats: t = 0.01 / 0.004 = 2.5 < t_crit (~4.6): not significant
        "tiny": _curve(1.0, [(0.5, 0.99, 0.004), (0.9, 1.5, 0.1)]),
    }
    res = noise_lowers_test(curves)
    assert res["n_tests"] == 4 and res["df"] == 4 and res["t_critical"] == pytest.approx(t_crit)
    assert res["any_significant"] is False
    tiny = res["per_model"]["tiny"]
    assert tiny["max_mean_gain"] == pytest.approx(0.01) and tiny["max_mean_gain_fraction"] == 0.5
    assert tiny["max_t"] == pytest.approx(2.5) and tiny["significant_fractions"] == []
    assert res["per_model"]["raises"]["max_mean_gain"] < 0
    # the same gain with a 10x smaller standard error is significant (t = 25)
    curves["tiny"][1]["noise_test_loss_sem"] = 0.0004
    res = noise_lowers_test(curves)
    assert res["any_significant"] is True and res["per_model"]["tiny"]["significant_fractions"] == [0.5]
    # zero SE with a positive gain is significant; mixed draw counts are an error
    curves["tiny"][1]["noise_test_loss_sem"] = 0.0
    assert noise_lowers_test(curves)["per_model"]["tiny"]["max_t"] == float("inf")
    curves["raises"][1]["noise_draws"] = 3
    with pytest.raises(ValueError, match="different numbers of draws"):
        noise_lowers_test(curves)
