"""The verdict predicates of paper A (harness.ml.verdicts) and A8's effect-size rule (harness.ml.fig3)."""

from __future__ import annotations

import math

import pytest

from harness.ml.fig3 import prune_gain_beyond_noise_spread
from harness.ml.verdicts import (
    Judgement,
    judge_a1_size,
    judge_a8,
    judge_ahead,
    judge_signs,
    judge_tau_ci_positive,
    positive,
    same_sign,
    strict_sign,
)

NAN = float("nan")


@pytest.mark.parametrize(
    ("value", "sign"),
    [(0.3, 1), (-0.3, -1), (0.0, 0), (-0.0, 0), (NAN, 0), (math.inf, 1), (-math.inf, -1), (1e-300, 1)],
)
def test_strict_sign(value, sign):
    assert strict_sign(value) == sign


def test_copysign_was_the_bug():
    # what the old A5 check did: copysign(1, NaN) and copysign(1, 0.0) are +1, so both "matched" +0.7085
    assert math.copysign(1, NAN) == math.copysign(1, 0.0) == math.copysign(1, 0.7085)
    assert not same_sign(NAN, 0.7085)
    assert not same_sign(0.0, 0.7085)
    assert not same_sign(-0.0, -0.6055)


@pytest.mark.parametrize(
    ("value", "ref", "ok"),
    [
        (0.5, 0.7, True),
        (-0.5, -0.6, True),
        (-0.5, 0.7, False),
        (0.5, -0.6, False),
        (0.5, NAN, False),
        (0.0, 0.0, False),
    ],
)
def test_same_sign(value, ref, ok):
    assert same_sign(value, ref) is ok


def test_a5_signs_nan_and_zero_fail():
    paper = {"neg_sum_train_losses": 0.7085, "frobenius": -0.6055}
    assert judge_signs({"neg_sum_train_losses": 0.2, "frobenius": -0.1}, paper, "loss gap").reproduced
    for bad in (NAN, 0.0):
        j = judge_signs({"neg_sum_train_losses": bad, "frobenius": -0.1}, paper, "loss gap")
        assert not j.reproduced
        assert j.checks == {"neg_sum_train_losses": False, "frobenius": True}
        assert "neg_sum_train_losses" in j.failures()


def test_judgement_needs_a_condition_and_reports_failures():
    assert not Judgement().reproduced
    j = Judgement().require("x", True, "x failed").require("y", False, "y failed")
    assert not j.reproduced and j.failures() == "y failed"
    assert positive(1.0) and not positive(NAN) and not positive(0.0)


def test_a1_reproduced_requires_three_widths():
    # the old record omitted len(included) >= 3: a failing test could record "reproduced"
    assert not judge_a1_size(1.0, -1.0, 2).reproduced
    assert judge_a1_size(1.0, -1.0, 3).reproduced
    assert judge_a1_size(1.0, 0.0, 3).reproduced  # <= 0: flat prunability is size-independent
    assert not judge_a1_size(1.0, NAN, 3).reproduced
    assert not judge_a1_size(NAN, -1.0, 3).reproduced


def test_a3_tau_ci():
    assert judge_tau_ci_positive(0.5, 0.1, 0.8, 10, "p").reproduced
    assert not judge_tau_ci_positive(0.5, 0.0, 0.8, 10, "p").reproduced
    assert not judge_tau_ci_positive(0.5, NAN, NAN, 10, "p").reproduced
    assert not judge_tau_ci_positive(0.5, 0.1, 0.8, 2, "p").reproduced


def test_a4_ahead_nan_is_not_ahead():
    stats = {"p": {"tau": 0.5, "cmi": NAN}, "q": {"tau": 0.4, "cmi": 0.1}}
    j = judge_ahead(stats, "p", ["q"], ("tau",), 5)
    assert j.reproduced
    j = judge_ahead(stats, "p", ["q"], ("tau", "cmi"), 5)
    assert not j.reproduced and j.checks["cmi vs q"] is False
    assert not judge_ahead(stats, "p", ["q"], ("tau",), 2).reproduced


def _curve(base, prune, noise_mean, noise_sem, draws=5):
    rows = [
        {
            "fraction_pruned": 0.0,
            "prune_test_loss": base,
            "noise_test_loss": base,
            "noise_test_loss_sem": 0.0,
            "noise_draws": draws,
        }
    ]
    for i, (p, n, se) in enumerate(zip(prune, noise_mean, noise_sem, strict=True)):
        rows.append(
            {
                "fraction_pruned": 0.1 * (i + 1),
                "prune_test_loss": p,
                "noise_test_loss": n,
                "noise_test_loss_sem": se,
                "noise_draws": draws,
            }
        )
    return rows


def test_a8_effect_must_exceed_noise_spread():
    # gain 0.01 at f=0.1 but the noise spread there is 0.02 * sqrt(5) = 0.0447: no effect
    small = _curve(1.0, [0.99, 1.2], [1.0, 1.3], [0.02, 0.02])
    eff = prune_gain_beyond_noise_spread({"m": small})["m"]
    assert eff["fractions_beyond_spread"] == []
    assert eff["gain_at_best"] == pytest.approx(0.01)
    assert eff["spread_at_best"] == pytest.approx(0.02 * math.sqrt(5))
    # gain 0.1 at f=0.2 with spread 0.01 * sqrt(5) = 0.022: an effect at that fraction only
    big = _curve(1.0, [0.99, 0.9], [1.0, 1.0], [0.02, 0.01])
    eff = prune_gain_beyond_noise_spread({"m": big})["m"]
    assert eff["fractions_beyond_spread"] == [pytest.approx(0.2)]
    assert eff["best_excess"] == pytest.approx(0.1 - 0.01 * math.sqrt(5))
    j_small = judge_a8(prune_gain_beyond_noise_spread({"m": small}), False, {}, {"m": True}, 1)
    j_big = judge_a8(prune_gain_beyond_noise_spread({"m": big}), False, {}, {"m": True}, 1)
    assert not j_small.reproduced and j_small.checks["a_prune_lowers_test_beyond_noise_spread"] is False
    assert j_big.reproduced
    assert not judge_a8(
        prune_gain_beyond_noise_spread({"m": big}), True, {"m": [0.1]}, {"m": True}, 1
    ).reproduced
    assert not judge_a8(prune_gain_beyond_noise_spread({"m": big}), False, {}, {"m": False}, 1).reproduced
