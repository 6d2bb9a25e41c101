"""Paper A's claims, pinned to the paper's version (see ../shared/CLAIMS.md).

Known deviations: add the measured value under the profile where the claim
did not reproduce (it becomes a strict xfail carrying that number). Never
loosen a tolerance to make a claim pass.
"""

from dataclasses import replace

from harness.claims import Claim, Paper

PAPER = Paper(
    title="Robustness to Pruning Predicts Generalization in Deep Neural Networks",
    arxiv_id="2103.06002",
    version="v1",
    authors="Kuhn, Lyle, Gomez, Rothfuss, Gal (2021)",
)

ALPHA = 0.10  # prunability tolerance: pruned train loss <= (1 + ALPHA) * unpruned

A1 = Claim(
    id="A1",
    paper=PAPER,
    section="abstract, Fig 1",
    statement=(
        "Prunability is a fraction in (0, 1], needs no test data, and does not grow with network "
        "size (unlike the absolute number of weights kept)."
    ),
    paper_value="prunability in (0, 1]; size-independent",
    tolerance=(
        "exact: three hypothesis property tests each record a verdict (fraction in [0, 1] and > 0 unless the "
        "all-pruned net meets the tolerance, bisection boundary k / k-1, equal to the full scan where the loss "
        "is monotone; invariance to layer order and hidden-unit permutation; weights the loss ignores are "
        "pruned); A1's own SGD width sweep (harness.ml.profiles.width_sweep: the smoke zoo's recipe, widths "
        "64-256 at smoke; not A2's Adam Fig 1 sweep): tau(width, absolute weights kept) > 0 and "
        "tau(width, prunability) <= 0, a NaN tau counting as a failure"
    ),
)

A2 = Claim(
    id="A2",
    paper=PAPER,
    section="Fig 1",
    statement=(
        "Across a width sweep, test error falls and prunability falls with it, while parameter "
        "count, absolute weights kept and Frobenius norms rise."
    ),
    paper_value="monotone trends over width (Fig 1)",
    tolerance=(
        "Kendall tau over the widths of the converged models of the Fig 1 sweep (harness.ml.double_descent "
        "'fig1': Adam 1e-3, batch 100, the Fig 2 recipe without label noise, widths 64-1024 at smoke; not "
        "A1's SGD zoo sweep): tau(width, prunability) < 0, tau(width, params) > 0, tau(width, Frobenius) > 0; "
        "test error and weights kept reported"
    ),
)

A3 = Claim(
    id="A3",
    paper=PAPER,
    section="Table 1",
    statement="Over a family of trained networks, prunability correlates with the generalization gap.",
    paper_value="Kendall tau = 0.6496, adjusted R^2 = 0.5440, CMI = 0.0324",
    tolerance=(
        "asserted: tau(prunability, loss gap) > 0 with a 95% bootstrap CI that excludes 0; adjusted R^2 "
        "(gap ~ prunability) and PGDL CMI (per complete grid, averaged; flagged when a grid is incomplete) "
        "reported beside the paper's, for both gaps, not asserted"
    ),
)

#: appended to a deviation measured in both zoo states seen on 2026-12-02 (README: paper A's smoke numbers
#: came out in one of two states across fresh-clone runs; cause open)
SECOND_STATE = "; in a second zoo state (fresh-clone runs at a later commit the same day, see README): "

A4 = Claim(
    id="A4",
    paper=PAPER,
    section="Table 1",
    statement="Prunability predicts the gap better than random perturbation robustness.",
    paper_value="prunability tau 0.6496 vs random perturbation tau 0.4253 (adj. R^2 0.5440 vs 0.2440; CMI 0.0324 vs 0.0230)",
    tolerance=(
        "on the same family, vs the loss gap, prunability is ahead of BOTH random-perturbation variants "
        "(absolute and magnitude-aware) on each of Table 1's three statistics: Kendall tau, adjusted R^2 "
        "(gap ~ measure) and PGDL CMI (per complete grid, averaged; flagged when a grid is incomplete); "
        "error gap and random pruning reported"
    ),
    known_deviations={
        "smoke": (
            "measured 2026-12-02 (shared model cache; loss rule) on 14 converged MNIST-1D MLPs (2 unconverged "
            "excluded), vs the loss gap, as (tau, adj. R^2, CMI): prunability (0.846 [CI 0.650, 1.0], 0.955, "
            "0.488) vs magnitude-aware perturbation (0.912 [0.775, 1.0], 0.906, 0.567) vs absolute perturbation "
            "(0.099 [-0.247, 0.457], -0.083, 0.035): behind the magnitude-aware variant on tau and CMI (ahead "
            "on adj. R^2), ahead of the absolute one on all three; paired bootstrap delta tau (prunability - "
            "magnitude) = -0.066 [-0.238, 0.099] (indistinguishable), (prunability - absolute) = +0.747 "
            "[0.361, 1.133]; CMI not PGDL-exact (the excluded models leave the 2^4 grid incomplete). "
            "(2026-12-01, another cache of the same configs: prunability 0.868 vs magnitude 0.934.)"
            + SECOND_STATE + "delta tau (prunability - magnitude) -0.066 [-0.253, 0.101]: not resolved in either"
        ),
        "paper": (
            "measured 2026-12-01 on 82 converged models of the 96-model paper zoo (2 seeds x 2^5 MLP grid + "
            "2^4 CNN grid; 14 unconverged excluded), vs the loss gap, as (tau, adj. R^2, CMI): prunability "
            "(0.437 [CI 0.294, 0.560], 0.291, 0.187) vs magnitude-aware perturbation (0.083, 0.357, 0.217) vs "
            "absolute perturbation (0.498, 0.122, 0.035): ahead of the magnitude-aware variant on tau only, "
            "behind the absolute one on tau; paired bootstrap delta tau (prunability - absolute) = -0.061 "
            "[-0.252, 0.119], (prunability - magnitude) = +0.354 [0.218, 0.482]; CMI not PGDL-exact (exclusions "
            "leave grids incomplete); error gap tau: prunability 0.472 vs magnitude -0.008 vs absolute 0.443. "
            "Re-measured 2026-12-03 on the ensemble-trained zoo (82 converged; AVX-512 kernels): prunability "
            "(0.501 [0.358, 0.618], 0.359, 0.146) vs absolute (0.480, 0.099, 0.073) vs magnitude-aware (0.085, "
            "0.295, 0.292): ahead on tau and adj. R^2, behind magnitude-aware on CMI; delta tau vs absolute "
            "+0.021 [-0.162, 0.209] spans 0"
        ),
    },
)

A5 = Claim(
    id="A5",
    paper=PAPER,
    section="Table 1",
    statement="Reference rows of Table 1, computed on the same family and reported beside the paper's.",
    paper_value=(
        "neg. sum of train losses tau 0.7085, adj.R^2 0.4923, CMI 0.0186; "
        "Frobenius norm tau -0.6055, adj.R^2 0.7778, CMI 0.0612"
    ),
    tolerance=(
        "asserted: the sign of tau(measure, loss gap) equals the paper's for the negative sum of train losses "
        "and the Frobenius norm rows; magnitudes, adjusted R^2, CMI, the other rows and the error gap are "
        "reported beside the paper's numbers, not asserted"
    ),
    known_deviations={
        "smoke": (
            "measured 2026-12-02 (shared model cache): tau(neg. sum of train losses, loss gap) = -0.824 "
            "[95% CI -0.975, -0.576] vs paper +0.7085 (adj. R^2 0.726, CMI 0.081); Frobenius tau = -0.033 "
            "[-0.349, +0.333] (paper -0.6055, adj. R^2 -0.077): sign matches, CI spans 0; n=14 converged models "
            "of the 2^4 smoke zoo, 2 unconverged excluded (2026-12-01, another cache: -0.890 and -0.077)"
        ),
        "paper": (
            "measured 2026-12-01 on 82 converged models of the 96-model paper zoo (14 unconverged excluded): "
            "tau(neg. sum of train losses, loss gap) = -0.298 vs paper +0.7085 (adj. R^2 0.538, CMI 0.075); "
            "Frobenius tau = +0.057 vs paper -0.6055 (adj. R^2 0.368, CMI 0.055): both rows have the opposite "
            "sign (prunability on the same models: tau 0.437). Re-measured 2026-12-03 on the ensemble-trained zoo "
            "(82 converged; AVX-512 kernels): -0.289 [-0.439, -0.136] and +0.066 [-0.110, +0.235]: still both "
            "opposite"
        ),
    },
)

A6 = Claim(
    id="A6",
    paper=PAPER,
    section="Table 2",
    statement="Granulated Kendall coefficients psi_i per hyperparameter axis and their mean Psi.",
    paper_value="Table 2 (psi per axis); the paper's Table 2 values are not available offline to this suite",
    tolerance=(
        "asserted: Psi(prunability, loss gap) > 0 (mean over the profile's grids); psi_i for every axis and "
        "measure reported (no paper numbers to compare with offline)"
    ),
)

A7 = Claim(
    id="A7",
    paper=PAPER,
    section="Fig 2",
    statement=(
        "In a double-descent width sweep with label noise, prunability tracks test loss through the "
        "peak and second descent, where size- and norm-based measures and effective dimensionality do not."
    ),
    paper_value="prunability follows the test-loss double descent (Fig 2)",
    tolerance=(
        "the double-descent setting must be present: the test-loss curve over widths has an interior peak "
        "(maximum at neither end, widest net below it); and Kendall tau over widths tau(prunability, test "
        "loss) > tau(params, test loss), tau(Frobenius, test loss), tau(N_eff, test loss); peak widths "
        "reported for every curve"
    ),
)

A8 = Claim(
    id="A8",
    paper=PAPER,
    section="Fig 3",
    statement=(
        "Moderate magnitude pruning can lower test loss while a random perturbation of the same norm only "
        "raises it; on the training loss, pruning hurts more than random perturbation."
    ),
    paper_value="qualitative (Fig 3)",
    tolerance=(
        "(a) for some model the lowest test loss over pruned fractions > 0 is below the unpruned one; (b) at "
        "no (model, fraction) does equal-norm noise lower the test loss significantly: one-sided t-test on "
        "the noise draws (mean gain > t_{1-0.05/m, draws-1} x SE, Bonferroni over the m model x fraction "
        "points, family level 0.05); (c) for every model the mean train-loss increase over fractions > 0 "
        "is larger for pruning than for equal-norm noise"
    ),
    known_deviations={
        "smoke": (
            "measured 2026-12-02: part (a) holds with an effect size (w1024: pruning 40-70% lowers the test "
            "loss by more than the equal-norm noise's spread at the same fraction; best at 60%: gain 0.075 nats "
            "vs spread 0.029, excess 0.046; w256 and w64: no fraction beyond the spread) but (c) fails for the "
            "narrowest converged Fig 1 model w64: mean train-loss increase over fractions 0.1-0.95 is 5.62 nats "
            "for pruning vs 12.47 for equal-norm noise (pruning hurts more at 4/10 fractions); w256 1.23 vs "
            "1.04, w1024 0.42 vs 0.03. Part (b) holds: max t 1.36 < Bonferroni t_crit 6.25 (30 points, df 4)"
        ),
        "paper": (
            "measured 2026-12-01 on the Fig 1 sweep's w48, w384 and w2048 (50 fractions x 10 noise draws): "
            "(a) holds (w2048: pruning 74% lowers test loss by 0.075 nats; w384 38%: 0.050); (b) holds (max t "
            "0.95 < Bonferroni t_crit 5.06 over 147 points); (c) fails for the narrowest model w48: mean "
            "train-loss increase 8.06 nats for pruning vs 16.99 for equal-norm noise (pruning hurts more at "
            "31% of fractions); w384 0.87 vs 0.32, w2048 0.150 vs 0.004"
        ),
    },
)

# ---------------------------------------------------------------------------
# One verdict per gap and per perturbation definition (issue 13). The ids A3 ... A6 keep meaning the loss gap
# (test CE - train CE); the suffix "e" is the error gap (test error - train error = train acc - test acc,
# PGDL's gen_gap). The paper's Table 1 does not say which gap it used (its body was not available to check;
# PGDL scores the accuracy gap, DEMOGEN gives accuracy gaps), so both are judged. A4's rival definitions:
# A4 / A4e the loss rule above; A4j / A4je the Jiang / PGDL accuracy rule (nitarshan/robust-generalization-
# measures _pacbayes_sigma); A4f / A4fe PAC-Bayes flatness as harness.ml.catalogue computes it.
# ---------------------------------------------------------------------------

_A4_TOL = (
    "on the same family, vs the {gap}, prunability is ahead of {rivals} on each of Table 1's three statistics: "
    "Kendall tau, adjusted R^2 (gap ~ measure, raw scale; the log-scale fit is reported beside) and PGDL CMI "
    "(per complete grid, averaged; flagged when a grid is incomplete), AND the paired bootstrap 95% CI of "
    "delta tau (prunability - rival) excludes 0 for every rival: with point estimates alone the smoke verdicts "
    "of A4e / A4je flipped between two fresh-clone runs whose delta-tau CIs both spanned 0"
)
_LOSS_RULE = "BOTH loss-rule random-perturbation variants (absolute and magnitude-aware; 1/sigma^2)"
_ACC_RULE = (
    "BOTH accuracy-rule perturbation variants of the Jiang et al. / PGDL lineage (nitarshan/robust-"
    "generalization-measures data/generation/measures.py _pacbayes_sigma: sigma at which the mean train "
    "accuracy over 10 draws moves by 0.1, noise on all parameters, bisection on [0, 2], absolute and "
    "magnitude-aware with eps 1e-3; reported as sqrt(1/sigma^2 / m))"
)
_PACBAYES = (
    "PAC-Bayes flatness (harness.ml.catalogue.pac_bayes_flatness: 1/sigma^2 for the largest sigma keeping the "
    "mean train accuracy over 5 draws within 0.1, noise on the weights)"
)

A3e = replace(
    A3,
    id="A3e",
    statement=A3.statement + " (error gap: test error - train error)",
    tolerance=(
        "asserted: tau(prunability, error gap) > 0 with a 95% bootstrap CI that excludes 0; adjusted R^2 and "
        "PGDL CMI vs the error gap reported beside the paper's, not asserted"
    ),
)
A4 = replace(A4, tolerance=_A4_TOL.format(gap="loss gap", rivals=_LOSS_RULE) + "; random pruning reported")
A4e = replace(
    A4,
    id="A4e",
    statement=A4.statement + " (error gap; loss-rule perturbation)",
    tolerance=_A4_TOL.format(gap="error gap", rivals=_LOSS_RULE),
    known_deviations={
        "smoke": (
            "measured 2026-12-02 on 14 converged MNIST-1D MLPs (2 unconverged excluded), vs the error gap, as "
            "(tau, adj. R^2, CMI): prunability (0.802 [CI 0.600, 0.976], 0.815, 0.268) vs magnitude-aware "
            "loss-rule perturbation (0.868 [0.650, 1.0], 0.658, 0.408) vs absolute (0.143 [-0.247, 0.558], "
            "-0.021, 0.042): behind the magnitude-aware variant on tau and CMI (ahead on adj. R^2); paired "
            "delta tau (prunability - magnitude) = -0.066 [-0.282, 0.101]; CMI not PGDL-exact"
            + SECOND_STATE + "prunability tau 0.780 vs magnitude-aware 0.758, delta tau +0.022 [-0.150, 0.214], "
            "ahead on all three point estimates but the CI spans 0 in both states: not shown"
        ),
        "paper": (
            "measured 2026-12-03 on 82 converged models of the ensemble-trained 96-model paper zoo (14 "
            "unconverged excluded; AVX-512 kernels), vs the error gap, as (tau [95% CI], adj. R^2, CMI): "
            "prunability (0.500 [0.357, 0.615], 0.262, 0.100) vs absolute loss-rule perturbation (0.449 [0.329, "
            "0.551], 0.281, 0.068) and magnitude-aware (-0.004, -0.011, 0.172): ahead of absolute on tau and adj. "
            "R^2 but not on CMI, delta tau vs absolute +0.051 [-0.148, 0.256] spans 0 (vs magnitude-aware +0.504 "
            "[0.363, 0.666]): not shown; CMI not PGDL-exact"
        ),
    },
)
A4j = replace(
    A4,
    id="A4j",
    statement=A4.statement + " (loss gap; accuracy-rule perturbation of the Jiang / PGDL lineage)",
    tolerance=_A4_TOL.format(gap="loss gap", rivals=_ACC_RULE),
    known_deviations={
        "smoke": (
            "measured 2026-12-02 on 14 converged MNIST-1D MLPs (2 unconverged excluded), vs the loss gap, as "
            "(tau, adj. R^2, CMI): prunability (0.846 [CI 0.650, 1.0], 0.955, 0.488) vs magnitude-aware "
            "accuracy-rule perturbation (0.827 [0.597, 0.964], 0.932, 0.343) vs absolute (0.284, -0.069, 0.040): "
            "ahead on all three point estimates, but paired delta tau (prunability - magnitude) = +0.019 "
            "[-0.23, 0.27] does not exclude 0"
            + SECOND_STATE + "delta tau +0.041 [-0.200, 0.348]: ahead, not resolved in either state"
        ),
        "paper": (
            "measured 2026-12-03 on 82 converged models of the ensemble-trained 96-model paper zoo (14 "
            "unconverged excluded; AVX-512 kernels), vs the loss gap, as (tau [95% CI], adj. R^2, CMI): "
            "prunability (0.501 [0.358, 0.618], 0.359, 0.146) vs absolute accuracy-rule perturbation (0.456 "
            "[0.346, 0.560], 0.236, 0.026) and magnitude-aware (-0.069, -0.009, 0.241): delta tau vs absolute "
            "+0.045 [-0.138, 0.216] spans 0 (vs magnitude-aware +0.570 [0.427, 0.723]), behind magnitude-aware on "
            "CMI: not shown; CMI not PGDL-exact"
        ),
    },
)
A4je = replace(
    A4j,
    id="A4je",
    statement=A4.statement + " (error gap; accuracy-rule perturbation of the Jiang / PGDL lineage)",
    tolerance=_A4_TOL.format(gap="error gap", rivals=_ACC_RULE),
    known_deviations={
        "smoke": (
            "measured 2026-12-02 on 14 converged MNIST-1D MLPs (2 unconverged excluded), vs the error gap, as "
            "(tau, adj. R^2, CMI): prunability (0.802 [CI 0.600, 0.976], 0.815, 0.268) vs magnitude-aware "
            "accuracy-rule perturbation (0.804 [0.554, 0.970], 0.666, 0.322) vs absolute (0.239 [-0.158, 0.630], "
            "0.032, 0.034): behind the magnitude-aware variant on tau (by 0.0015) and CMI, ahead on adj. R^2; "
            "paired delta tau (prunability - magnitude) = -0.001 [-0.245, 0.275] (indistinguishable); CMI not "
            "PGDL-exact"
            + SECOND_STATE + "prunability tau 0.780 vs magnitude-aware 0.757, delta tau +0.023 [-0.236, 0.336]: "
            "the CI spans 0 in both states: not shown"
        ),
        "paper": (
            "measured 2026-12-03 on 82 converged models of the ensemble-trained 96-model paper zoo (14 "
            "unconverged excluded; AVX-512 kernels), vs the error gap, as (tau [95% CI], adj. R^2, CMI): "
            "prunability (0.500 [0.357, 0.615], 0.262, 0.100) vs absolute accuracy-rule perturbation (0.481 "
            "[0.379, 0.565], 0.565, 0.019) and magnitude-aware (-0.032, 0.187, 0.133): behind absolute on adj. "
            "R^2, delta tau vs absolute +0.019 [-0.166, 0.200] spans 0 (vs magnitude-aware +0.533 [0.410, "
            "0.657]): not shown; CMI not PGDL-exact"
        ),
    },
)
A4f = replace(
    A4,
    id="A4f",
    statement=A4.statement + " (loss gap; PAC-Bayes flatness)",
    tolerance=_A4_TOL.format(gap="loss gap", rivals=_PACBAYES),
    known_deviations={
        "paper": (
            "measured 2026-12-03 on 82 converged models of the ensemble-trained 96-model paper zoo (14 "
            "unconverged excluded; AVX-512 kernels), vs the loss gap, as (tau [95% CI], adj. R^2, CMI): "
            "prunability (0.501 [0.358, 0.618], 0.359, 0.146) vs PAC-Bayes flatness (0.465 [0.348, 0.566], 0.086, "
            "0.020): ahead on all three point estimates, but delta tau +0.036 [-0.149, 0.214] spans 0: not shown "
            "(the smoke zoo shows it); CMI not PGDL-exact"
        ),
    },
)
A4fe = replace(
    A4f,
    id="A4fe",
    statement=A4.statement + " (error gap; PAC-Bayes flatness)",
    tolerance=_A4_TOL.format(gap="error gap", rivals=_PACBAYES),
    known_deviations={
        "paper": (
            "measured 2026-12-03 on 82 converged models of the ensemble-trained 96-model paper zoo (14 "
            "unconverged excluded; AVX-512 kernels), vs the error gap, as (tau [95% CI], adj. R^2, CMI): "
            "prunability (0.500 [0.357, 0.615], 0.262, 0.100) vs PAC-Bayes flatness (0.485 [0.377, 0.571], 0.292, "
            "0.019): behind on adj. R^2, delta tau +0.016 [-0.174, 0.205] spans 0: not shown (the smoke zoo shows "
            "it); CMI not PGDL-exact"
        ),
    },
)
A5e = replace(
    A5,
    id="A5e",
    statement=A5.statement + " (error gap)",
    tolerance=(
        "asserted: the sign of tau(measure, error gap) equals the paper's for the negative sum of train losses "
        "and the Frobenius norm rows (a NaN or zero tau has no sign and fails); the rest reported"
    ),
    known_deviations={
        "smoke": (
            "measured 2026-12-02: tau(neg. sum of train losses, error gap) = -0.780 [95% CI -0.976, -0.481] vs "
            "paper +0.7085 (adj. R^2 0.644, CMI 0.262); Frobenius tau = -0.077 [-0.450, +0.310] (paper -0.6055; "
            "sign matches, CI spans 0); n=14 converged models, 2 unconverged excluded"
        ),
        "paper": (
            "measured 2026-12-03 on 82 converged models of the ensemble-trained 96-model paper zoo (14 "
            "unconverged excluded; AVX-512 kernels): tau(neg. sum of train losses, error gap) = -0.321 [95% CI "
            "-0.465, -0.178] vs paper +0.7085 (adj. R^2 0.072, CMI 0.152); Frobenius tau = +0.094 [-0.083, "
            "+0.276] vs paper -0.6055: both opposite sign"
        ),
    },
)
A6e = replace(
    A6,
    id="A6e",
    statement=A6.statement + " (error gap)",
    tolerance="asserted: Psi(prunability, error gap) > 0 (mean over the profile's grids); psi_i reported",
)

CLAIMS = {c.id: c for c in (A1, A2, A3, A3e, A4, A4e, A4j, A4je, A4f, A4fe, A5, A5e, A6, A6e, A7, A8)}
