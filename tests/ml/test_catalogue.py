"""Measures of harness.ml.catalogue, each on a case whose answer is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from harness.ml.catalogue import (
    effective_dimensionality,
    effective_dimensionality_from_eigs,
    frobenius_log_prod,
    frobenius_sum_sq,
    hessian_top_eigenvalues,
    margin_percentile,
    margins,
    neg_sum_train_losses,
    pac_bayes_flatness,
    path_norm,
    spectral_log_prod,
    spectral_sum_sq,
)

torch.set_num_threads(1)


def _linear(weight, bias=None) -> nn.Linear:
    w = torch.as_tensor(weight, dtype=torch.float32)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(w)
        if bias is not None:
            lin.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return lin


def _two_layer(w1, w2) -> nn.Sequential:
    return nn.Sequential(_linear(w1, np.ones(len(w1))), nn.ReLU(), _linear(w2, np.ones(len(w2))))


W1 = [[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]]  # 3x2
W2 = [[2.0, 1.0, -1.0]]  # 1x3


def test_neg_sum_train_losses():
    assert neg_sum_train_losses([1.0, 0.5, 0.25]) == -1.75
    with pytest.raises(ValueError):
        neg_sum_train_losses([])
    with pytest.raises(ValueError):
        neg_sum_train_losses([1.0, float("nan")])


def test_frobenius_forms_exclude_biases():
    m = _two_layer(W1, W2)
    f1 = 1 + 4 + 0.25 + 9 + 0 + 1
    f2 = 4 + 1 + 1
    assert frobenius_sum_sq(m) == pytest.approx(f1 + f2)
    assert frobenius_log_prod(m) == pytest.approx(math.log(f1) + math.log(f2))


def test_spectral_norms_match_svd_and_reshape_conv_kernels():
    m = _two_layer(W1, W2)
    s1 = np.linalg.svd(np.array(W1), compute_uv=False)[0]
    s2 = np.linalg.norm(W2)
    assert spectral_sum_sq(m) == pytest.approx(s1**2 + s2**2, rel=1e-6)
    assert spectral_log_prod(m) == pytest.approx(2 * math.log(s1) + 2 * math.log(s2), rel=1e-6)
    conv = nn.Conv1d(2, 3, kernel_size=2, bias=False)
    k = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2)
    with torch.no_grad():
        conv.weight.copy_(k)
    expected = np.linalg.svd(k.reshape(3, 4).numpy(), compute_uv=False)[0]
    assert spectral_sum_sq(nn.Sequential(conv)) == pytest.approx(expected**2, rel=1e-6)


def test_path_norm_equals_explicit_sum_over_paths():
    m = _two_layer(W1, W2)
    w1, w2 = np.array(W1), np.array(W2)
    explicit = sum(w2[0, h] ** 2 * w1[h, i] ** 2 for h, i in itertools.product(range(3), range(2)))
    assert path_norm(m, (2,)) == pytest.approx(explicit)
    # biases excluded: changing them does not change the path norm
    with torch.no_grad():
        m[0].bias.fill_(-100.0)
    assert path_norm(m, (2,)) == pytest.approx(explicit)


def test_margin_tenth_percentile():
    # identity "model" over 3 classes: logits are the inputs themselves
    lin = _linear(np.eye(3))
    x = torch.tensor([[3.0, 1.0, 0.0]] * 9 + [[0.0, 2.0, 0.5]], dtype=torch.float32)
    y = torch.tensor([0] * 9 + [0])
    per = margins(lin, x, y)
    assert per.tolist() == [2.0] * 9 + [-2.0]
    assert margin_percentile(lin, x, y, q=10) == pytest.approx(np.percentile(per.numpy(), 10))
    assert margin_percentile(lin, x, y, q=50) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        margin_percentile(lin, x, y, q=101)


def test_pac_bayes_flatness_matches_the_analytic_sigma():
    # logits = [w0 x, w1 x] with w = (1, 0), x = 1, label 0: a draw is correct iff sigma (z1 - z0) < 1,
    # so the expected accuracy is Phi(1 / (sigma sqrt 2)); an accuracy drop of 0.1 gives
    # sigma* = 1 / (sqrt 2 * Phi^-1(0.9)) = 0.5518
    lin = _linear([[1.0], [0.0]])
    x = torch.ones((5, 1))
    y = torch.zeros(5, dtype=torch.long)
    res = pac_bayes_flatness(lin, x, y, criterion="accuracy", bound=0.1, draws=2000, seed=1)
    expected = 1 / (math.sqrt(2) * norm.ppf(0.9))
    assert res.sigma == pytest.approx(expected, rel=0.08)
    assert res.measure == pytest.approx(1 / res.sigma**2)
    assert not res.capped and res.deviation <= 0.1
    # the model's own weights are untouched
    assert lin.weight.detach().flatten().tolist() == [1.0, 0.0]


def test_pac_bayes_flatness_loss_criterion_stops_at_the_bound():
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    y = (x[:, 0] > 0).long()
    model = _linear([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]])
    res = pac_bayes_flatness(model, x, y, criterion="loss", bound=0.1, draws=8)
    assert not res.capped
    assert 0.09 < res.deviation <= 0.1  # the bisection ends on the boundary, from below
    with pytest.raises(ValueError):
        pac_bayes_flatness(model, x, y, criterion="sharpness")


def test_hessian_eigenvalues_of_a_known_quadratic_dense_and_lanczos():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((600, 600)))
    lam = np.concatenate([[50.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5], np.linspace(0.01, 0.1, 593)])
    A = torch.as_tensor((q * lam) @ q.T)
    theta = torch.zeros(600, dtype=torch.float64, requires_grad=True)

    def loss():
        return 0.5 * theta @ (A @ theta) + theta.sum()

    top = hessian_top_eigenvalues(loss, [theta], k=7, tol=1e-8)  # Lanczos (n > dense_below)
    np.testing.assert_allclose(top, lam[:7], rtol=1e-5)
    small = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    B = torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    top3 = hessian_top_eigenvalues(lambda: 0.5 * small @ (B @ small), [small], k=3)  # dense path
    np.testing.assert_allclose(top3, [5.0, 3.0, 1.0], atol=1e-10)
    assert effective_dimensionality_from_eigs(top, z=1.0) == pytest.approx(sum(v / (v + 1) for v in lam[:7]))


def test_effective_dimensionality_counts_eigenvalues_above_z():
    assert effective_dimensionality_from_eigs([1e6, 1e6, 1e-6, -3.0], z=1.0) == pytest.approx(2.0, abs=1e-5)
    with pytest.raises(ValueError):
        effective_dimensionality_from_eigs([1.0], z=0.0)


def test_effective_dimensionality_on_a_small_network_runs_and_is_bounded():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(64, 4)
    y = torch.randint(0, 3, (64,))
    n_eff, eig = effective_dimensionality(model, x, y, k=5, z=1e-3)
    assert eig.shape == (5,) and np.all(np.diff(eig) <= 1e-9)
    assert 0.0 <= n_eff <= 5.0


def test_n_eff_truncation_bounds():
    from harness.ml.double_descent import n_eff_truncation

    # eigenvalues fall below z = 1 within the counted ones: not capped; the tail bound uses lambda_k
    t = n_eff_truncation([9.0, 3.0, 1.0, 0.25], z=1.0, n_params=10)
    n_eff = 0.9 + 0.75 + 0.5 + 0.2
    assert not t["n_eff_capped"] and t["n_eff_min_counted_eig"] == 0.25
    assert t["n_eff_upper_bound"] == pytest.approx(n_eff + 6 * 0.2)
    # every counted eigenvalue above z: the count caps N_eff (a lower bound)
    t = n_eff_truncation([9.0, 3.0], z=1.0, n_params=2)
    assert t["n_eff_capped"] and t["n_eff_upper_bound"] == pytest.approx(0.9 + 0.75)
    # the exact N_eff of a known spectrum lies inside the bounds
    lam = np.array([5.0, 2.0, 0.5, 0.1, 0.05, 0.01])
    exact = float(np.sum(lam / (lam + 1.0)))
    t = n_eff_truncation(lam[:3], z=1.0, n_params=6)
    assert float(np.sum(lam[:3] / (lam[:3] + 1))) <= exact <= t["n_eff_upper_bound"]


def test_weightwatcher_alpha_is_the_mean_of_its_layer_alphas():
    from harness.ml.catalogue import weightwatcher_alpha, weightwatcher_alphas
    from harness.ml.models import build_model

    model = build_model("mlp", 64, 10, width=64, depth=2, seed=0).eval()
    before = [p.detach().clone() for p in model.parameters()]
    alphas = weightwatcher_alphas(model)
    assert 1 <= len(alphas) <= 3  # at most one per Linear layer
    assert all(math.isfinite(a) and a > 0 for a in alphas)
    assert weightwatcher_alpha(model) == pytest.approx(float(np.mean(alphas)))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
