"""Paper A's verdict predicates: one function per claim computes the conditions its test records AND asserts.

A :class:`Judgement` is a set of named conditions, each with the message that explains a failure. A suite
records ``reproduced=j.reproduced`` and then asserts ``j.reproduced`` with ``j.failures()``, so the recorded
verdict and the test outcome can never disagree (a failing test cannot record "reproduced").

Sign conventions: :func:`strict_sign` is the only sign test used by the suites; NaN and 0.0 have no sign
(``math.copysign`` gives 0.0 and NaN a sign bit, which counted them as agreeing with a positive paper value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def strict_sign(value: float) -> int:
    """+1 for a finite-or-infinite value > 0, -1 for < 0, 0 for 0.0, -0.0 and NaN (no sign)."""
    v = float(value)
    if math.isnan(v) or v == 0.0:
        return 0
    return 1 if v > 0 else -1


def same_sign(value: float, reference: float) -> bool:
    """True iff both have a strict sign and it is the same (NaN or 0 on either side: False)."""
    s = strict_sign(value)
    return s != 0 and s == strict_sign(reference)


def positive(value: float) -> bool:
    """value > 0, False for NaN."""
    return strict_sign(value) == 1


@dataclass
class Judgement:
    """Named conditions of a claim (``checks``), with a failure message for each (``messages``)."""

    checks: dict[str, bool] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def require(self, name: str, ok: bool, message: str) -> Judgement:
        self.checks[name] = bool(ok)
        self.messages[name] = message
        return self

    @property
    def reproduced(self) -> bool:
        """All conditions hold (and there is at least one)."""
        return bool(self.checks) and all(self.checks.values())

    def failures(self) -> str:
        """The messages of the conditions that failed, joined ('' when reproduced)."""
        return "; ".join(self.messages[k] for k, ok in self.checks.items() if not ok)


def judge_a1_size(tau_kept: float, tau_frac: float, n_included: int) -> Judgement:
    """A1 size part: >= 3 converged widths, tau(width, weights kept) > 0, tau(width, prunability) <= 0."""
    j = Judgement()
    j.require("n_included>=3", n_included >= 3, f"only {n_included} converged widths")
    j.require(
        "tau_kept>0",
        positive(tau_kept),
        f"absolute weights kept does not rise with width (tau={tau_kept:.3f}; NaN = undefined)",
    )
    j.require(
        "tau_frac<=0",
        not math.isnan(tau_frac) and tau_frac <= 0,
        f"prunability grows with width or its trend is undefined (tau={tau_frac:.3f}; NaN = constant "
        "prunability or fewer than 2 widths)",
    )
    return j


def judge_a2(taus: Mapping[str, float], n_used: int) -> Judgement:
    """A2: >= 3 converged widths; tau(width, prunability) < 0, tau(width, params) > 0, tau(width, Frobenius) > 0."""
    j = Judgement()
    j.require("n>=3", n_used >= 3, f"only {n_used} converged models in the width sweep")
    j.require(
        "prunability<0",
        strict_sign(taus["prunability"]) == -1,
        f"tau(width, prunability) = {taus['prunability']:.3f}, expected < 0",
    )
    j.require(
        "params>0", positive(taus["params"]), f"tau(width, params) = {taus['params']:.3f}, expected > 0"
    )
    j.require(
        "frobenius>0",
        positive(taus["frobenius"]),
        f"tau(width, Frobenius) = {taus['frobenius']:.3f}, expected > 0",
    )
    return j


def judge_tau_ci_positive(tau: float, ci_low: float, ci_high: float, n: int, what: str) -> Judgement:
    """A3 (per gap): >= 3 models, tau > 0 and the 95 % bootstrap CI excludes 0 (ci_low > 0)."""
    j = Judgement()
    j.require("n>=3", n >= 3, f"only {n} converged models: cannot score {what}")
    j.require(
        "tau>0 and CI excludes 0",
        positive(tau) and positive(ci_low),
        f"tau({what}) = {tau:.3f} CI95 [{ci_low:.3f}, {ci_high:.3f}] does not exclude 0",
    )
    return j


def judge_ahead(
    stats: Mapping[str, Mapping[str, float]], measure: str, rivals: list[str], keys: tuple[str, ...], n: int
) -> Judgement:
    """A4: ``measure`` strictly ahead of every rival on every statistic in ``keys`` (NaN: not ahead)."""
    j = Judgement()
    j.require("n>=3", n >= 3, f"fewer than 3 converged models ({n}): cannot score")
    for rival in rivals:
        for k in keys:
            a, b = float(stats[measure][k]), float(stats[rival][k])
            j.require(
                f"{k} vs {rival}",
                math.isfinite(a) and math.isfinite(b) and a > b,
                f"{k} vs {rival} ({a:.4f} vs {b:.4f})",
            )
    return j


def judge_signs(measured: Mapping[str, float], paper: Mapping[str, float], what: str) -> Judgement:
    """A5: sign of each measured tau equals the paper's (strict signs: NaN or 0 never match)."""
    j = Judgement()
    for m, ref in paper.items():
        v = float(measured[m])
        j.require(
            m,
            same_sign(v, ref),
            f"tau({m}, {what}) = {v:.3f}; paper {ref:+.4f} (sign must match; NaN/0 fail)",
        )
    return j


def judge_positive(value: float, what: str, extra: str = "") -> Judgement:
    """A6: ``value`` > 0 (NaN fails)."""
    return Judgement().require(what, positive(value), f"{what} = {value:.3f} {extra}".strip())


def judge_a7(interior: bool, peak_width: Any, taus: Mapping[str, float], others: list[str]) -> Judgement:
    """A7: the test-loss curve has an interior peak AND tau(prunability, test loss) > each other's tau."""
    j = Judgement()
    j.require(
        "interior_peak", interior, f"no double descent in this sweep: test loss peaks at width {peak_width}"
    )
    p = float(taus["prunability"])
    for m in others:
        v = float(taus[m])
        j.require(
            f"prunability>{m}",
            math.isfinite(p) and math.isfinite(v) and p > v,
            f"tau(prunability, test loss) = {p:.3f} is not above tau({m}, test loss) = {v:.3f}",
        )
    return j


def judge_a8(
    effect: Mapping[str, Mapping[str, Any]],
    noise_any_significant: bool,
    noise_where: Mapping[str, Any],
    prune_hurts_train_more: Mapping[str, bool],
    n_models: int,
) -> Judgement:
    """A8: (a) some model has a fraction where pruning lowers the test loss by more than the spread (sample
    std over draws) of the equal-norm noise's test loss at that fraction (``effect`` from
    :func:`harness.ml.fig3.prune_gain_beyond_noise_spread`); (b) noise never significantly lowers the test loss;
    (c) pruning raises the train loss more than noise, for every model."""
    j = Judgement()
    j.require("models", n_models > 0, "no converged model to draw Fig 3 from")
    j.require(
        "a_prune_lowers_test_beyond_noise_spread",
        any(bool(e["fractions_beyond_spread"]) for e in effect.values()),
        "no model's pruned test loss fell below the unpruned one by more than the equal-norm noise spread: "
        + str({m: (round(e["best_excess"], 5), e["best_excess_fraction"]) for m, e in effect.items()}),
    )
    j.require(
        "b_noise_never_significantly_lowers_test",
        not noise_any_significant,
        f"equal-norm noise significantly lowered the test loss at {dict(noise_where)}",
    )
    j.require(
        "c_pruning_hurts_train_more",
        bool(prune_hurts_train_more) and all(prune_hurts_train_more.values()),
        f"pruning did not raise the train loss more than noise for every model: {dict(prune_hurts_train_more)}",
    )
    return j
