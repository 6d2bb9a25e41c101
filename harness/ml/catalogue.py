"""The other generalization measures of paper A's Table 1 (and Jiang et al. 2020's catalogue).

Every function works on a plain ``nn.Module`` whose weight layers are
``nn.Linear`` / ``nn.Conv*`` (the prunable weights of
:func:`harness.ml.models.prunable_weights`); biases and normalisation
parameters are excluded from every norm. Sign convention: each function
returns the quantity itself (a norm, a margin); Table 1 correlates the
quantity as the paper defines it, which is stated per function.

Units: norms are dimensionless sums of squared weights (or their logs);
losses are mean cross-entropy in nats; margins are logit differences.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.ml.models import prunable_weights

# ---------------------------------------------------------------------------
# Optimisation-based
# ---------------------------------------------------------------------------


def neg_sum_train_losses(epoch_train_losses: Sequence[float]) -> float:
    """Negative sum over epochs of the mean minibatch train loss (nats): the paper's "speed" measure.

    Larger (less negative) means the model fitted its training set faster.
    """
    losses = np.asarray(list(epoch_train_losses), dtype=float)
    if losses.size == 0:
        raise ValueError("neg_sum_train_losses needs at least one epoch's train loss")
    if not np.all(np.isfinite(losses)):
        raise ValueError(f"neg_sum_train_losses got non-finite losses: {losses.tolist()}")
    return float(-losses.sum())


# ---------------------------------------------------------------------------
# Norm-based
# ---------------------------------------------------------------------------


def _weights(model: nn.Module) -> list[torch.Tensor]:
    ws = [w.detach() for _, w in prunable_weights(model)]
    if not ws:
        raise ValueError(f"{type(model).__name__} has no Linear/Conv weights to measure")
    return ws


def frobenius_sum_sq(model: nn.Module) -> float:
    """Sum over layers of the squared Frobenius norms, sum_l ||W_l||_F^2 (= ||w||_2^2 of all weights)."""
    return float(sum(float((w.double() ** 2).sum()) for w in _weights(model)))


def frobenius_log_prod(model: nn.Module) -> float:
    """log of the product over layers of squared Frobenius norms, sum_l log ||W_l||_F^2 (Jiang's log.prod.of.fro)."""
    return float(sum(math.log(float((w.double() ** 2).sum())) for w in _weights(model)))


def layer_spectral_norms(model: nn.Module) -> list[float]:
    """Top singular value of each weight layer; a conv kernel [out, in, k...] is reshaped to [out, in*k...].

    (The reshaped-kernel norm is the usual cheap stand-in for the true operator
    norm of a convolution.)
    """
    out = []
    for w in _weights(model):
        mat = w.double().reshape(w.shape[0], -1)
        out.append(float(torch.linalg.matrix_norm(mat, ord=2)))
    return out


def spectral_log_prod(model: nn.Module) -> float:
    """sum_l log sigma_max(W_l)^2: the log of the product of squared spectral norms."""
    return float(sum(2.0 * math.log(s) for s in layer_spectral_norms(model)))


def spectral_sum_sq(model: nn.Module) -> float:
    """sum_l sigma_max(W_l)^2: the sum of squared spectral norms."""
    return float(sum(s * s for s in layer_spectral_norms(model)))


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Squared path norm: sum over input-output paths of the product of squared weights.

    Computed as Jiang et al. do: every weight squared, biases set to 0, a
    forward pass of an all-ones input of shape ``(1, *input_shape)`` in eval
    mode, and the sum of the outputs. With non-negative weights and inputs,
    ReLUs pass everything, so this is exactly sum_paths prod_l w_l^2 for
    networks of Linear/Conv/ReLU/average pooling.
    """
    m = copy.deepcopy(model).double().eval()
    for mod in m.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            mod.weight.copy_(mod.weight**2)
            if mod.bias is not None:
                mod.bias.zero_()
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
            raise ValueError("path_norm is defined here for networks without normalisation layers")
    x = torch.ones((1, *input_shape), dtype=torch.float64)
    return float(m(x).sum())


# ---------------------------------------------------------------------------
# Margin
# ---------------------------------------------------------------------------


@torch.no_grad()
def margins(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    """Per-example output margin: correct-class logit minus the largest other logit (eval mode)."""
    was = model.training
    model.eval()
    try:
        out = []
        for i in range(0, x.shape[0], batch):
            logits = model(x[i : i + batch]).double()
            yy = y[i : i + batch]
            correct = logits.gather(1, yy[:, None]).squeeze(1)
            other = logits.clone()
            other.scatter_(1, yy[:, None], -math.inf)
            out.append(correct - other.max(dim=1).values)
        return torch.cat(out)
    finally:
        model.train(was)


def margin_percentile(model: nn.Module, x: torch.Tensor, y: torch.Tensor, q: float = 10.0) -> float:
    """The ``q``-th percentile (default 10th, as Jiang et al.) of the train-set output margins (logits)."""
    if not (0.0 <= q <= 100.0):
        raise ValueError(f"percentile q must be in [0, 100], got {q!r}")
    return float(np.percentile(margins(model, x, y).numpy(), q))


# ---------------------------------------------------------------------------
# Flatness (PAC-Bayes style)
# ---------------------------------------------------------------------------


@dataclass
class FlatnessResult:
    """sigma: the largest noise std found (absolute, per weight); measure = 1/sigma^2.

    ``deviation``: the criterion's deviation at ``sigma`` (accuracy drop, or
    relative loss increase); ``capped``: sigma reached ``sigma_max`` without
    exceeding the bound; ``evaluations``: forward passes of the train set.
    """

    sigma: float
    measure: float
    deviation: float
    capped: bool
    evaluations: int


@torch.no_grad()
def _eval_loss_acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    logits = model(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).double().mean())


@torch.no_grad()
def pac_bayes_flatness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    criterion: str = "accuracy",
    bound: float = 0.1,
    draws: int = 5,
    seed: int = 0,
    sigma_max: float = 10.0,
    iters: int = 20,
) -> FlatnessResult:
    """PAC-Bayes flatness (Jiang et al.'s pacbayes.flatness): 1/sigma^2 for the largest noise sigma found.

    Noise: w + sigma z, z ~ N(0, I), on every prunable weight (biases kept),
    with ``draws`` fixed Monte-Carlo draws (common random numbers across the
    search, so the search is on a fixed function of sigma). Criterion
    ``"accuracy"``: mean over draws of the train accuracy >= accuracy - ``bound``
    (Jiang et al. use 0.1); ``"loss"``: mean train loss <= (1 + ``bound``) * loss.
    sigma is found by bisection in log space between 0 and ``sigma_max``
    (``iters`` halvings, relative precision about 2^-iters of a decade).
    """
    if criterion not in ("accuracy", "loss"):
        raise ValueError(f"criterion must be 'accuracy' or 'loss', got {criterion!r}")
    if draws < 1 or bound <= 0:
        raise ValueError("draws must be >= 1 and bound > 0")
    m = copy.deepcopy(model).eval()
    params = [w for _, w in prunable_weights(m)]
    if not params:
        raise ValueError(f"{type(model).__name__} has no Linear/Conv weights to perturb")
    base = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(int(seed))
    noise = [[torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params] for _ in range(draws)]
    loss0, acc0 = _eval_loss_acc(m, x, y)
    evals = 1

    def deviation(sigma: float) -> float:
        nonlocal evals
        vals = []
        for z in noise:
            for p, b, zz in zip(params, base, z, strict=True):
                p.copy_(b + sigma * zz)
            loss, acc = _eval_loss_acc(m, x, y)
            evals += 1
            vals.append(acc if criterion == "accuracy" else loss)
        for p, b in zip(params, base, strict=True):
            p.copy_(b)
        mean = float(np.mean(vals))
        return acc0 - mean if criterion == "accuracy" else mean / loss0 - 1.0

    if deviation(sigma_max) <= bound:
        d = deviation(sigma_max)
        return FlatnessResult(sigma_max, 1.0 / sigma_max**2, d, True, evals)
    lo, hi = sigma_max * 1e-8, sigma_max
    if deviation(lo) > bound:
        return FlatnessResult(lo, 1.0 / lo**2, deviation(lo), False, evals)
    for _ in range(iters):
        mid = math.sqrt(lo * hi)
        if deviation(mid) <= bound:
            lo = mid
        else:
            hi = mid
    d = deviation(lo)
    return FlatnessResult(lo, 1.0 / lo**2, d, False, evals)


# ---------------------------------------------------------------------------
# Heavy-tailed self-regularisation (Martin & Mahoney; PyPI weightwatcher), data-free
# ---------------------------------------------------------------------------


def weightwatcher_alphas(model: nn.Module) -> list[float]:
    """Per-layer power-law exponent alpha of the empirical spectral density of W^T W, as
    ``weightwatcher.WeightWatcher(model=m).analyze()["alpha"]`` (weightwatcher 0.7.7; no data, CPU SciPy SVD).

    weightwatcher decides which layers it analyses (it may skip layers it finds too small); its console and
    warning noise is suppressed. Returns the alphas of the analysed layers, in layer order.
    """
    import contextlib
    import io
    import logging
    import warnings

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import weightwatcher as ww

        logging.getLogger("weightwatcher").setLevel(logging.ERROR)
        frame = ww.WeightWatcher(model=model).analyze()
    if frame is None or "alpha" not in getattr(frame, "columns", []):
        return []
    return [float(a) for a in frame["alpha"].tolist()]


def weightwatcher_alpha(model: nn.Module) -> float:
    """Mean over the analysed layers of weightwatcher's alpha (its summary ``alpha``); NaN if no layer is
    analysed. Smaller alpha = heavier-tailed spectra, which weightwatcher reads as better trained; as a
    complexity measure a larger alpha is expected to go with a larger gap."""
    alphas = [a for a in weightwatcher_alphas(model) if math.isfinite(a)]
    return float(np.mean(alphas)) if alphas else float("nan")


# ---------------------------------------------------------------------------
# Effective dimensionality (Maddox, Benton, Wilson 2020)
# ---------------------------------------------------------------------------


def hessian_top_eigenvalues(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    k: int = 20,
    tol: float = 1e-3,
    seed: int = 0,
    dense_below: int = 400,
) -> np.ndarray:
    """The ``k`` largest (algebraic) eigenvalues of the Hessian of ``loss_fn()`` w.r.t. ``params``, descending.

    Lanczos (``scipy.sparse.linalg.eigsh``, which='LA') on a LinearOperator
    whose matvec is a Hessian-vector product by double backprop
    (``torch.autograd.grad`` twice, float64 vectors). With fewer than
    ``dense_below`` parameters (or k >= n) the full Hessian is built from n
    HVPs and diagonalised exactly instead.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    params = [p for p in params if p.requires_grad]
    n = int(sum(p.numel() for p in params))
    if n == 0:
        raise ValueError("no parameters requiring grad")
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: np.ndarray) -> np.ndarray:
        vt = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(-1), dtype=flat_grad.dtype)
        hv = torch.autograd.grad(flat_grad @ vt, params, retain_graph=True, materialize_grads=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach().double().numpy()

    k = int(k)
    if k < 1:
        raise ValueError("k must be >= 1")
    if n < dense_below or k >= n:
        H = np.stack([hvp(e) for e in np.eye(n)], axis=1)
        H = 0.5 * (H + H.T)
        ev = np.linalg.eigvalsh(H)[::-1]
        return ev[: min(k, n)].copy()
    op = LinearOperator((n, n), matvec=hvp, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    ev = eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(ev)[::-1]


def effective_dimensionality_from_eigs(eigenvalues: Sequence[float], z: float = 1.0) -> float:
    """N_eff = sum_i lambda_i / (lambda_i + z) over the given Hessian eigenvalues.

    ``z`` (> 0, same unit as the eigenvalues: loss per parameter^2) is the
    regularisation constant of Maddox et al. (2020); eigenvalues much larger
    than z count 1, much smaller count ~0. Negative eigenvalues (non-convex
    directions) are clipped to 0.
    """
    if z <= 0:
        raise ValueError(f"z must be > 0, got {z!r}")
    lam = np.clip(np.asarray(eigenvalues, dtype=float), 0.0, None)
    return float(np.sum(lam / (lam + z)))


def effective_dimensionality(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    k: int = 20,
    z: float = 1.0,
    max_examples: int | None = None,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """(N_eff, top-k eigenvalues) of the Hessian of the mean train cross-entropy w.r.t. all parameters.

    The model is evaluated in float64, eval mode. ``max_examples`` takes the
    first that many train examples (a cost cap; None = all). Only the top
    ``k`` eigenvalues enter N_eff: for z = 1 the tail below contributes
    ~lambda/z each, documented as a truncation.
    """
    m = copy.deepcopy(model).double().eval()
    xs = x[:max_examples] if max_examples else x
    ys = y[:max_examples] if max_examples else y
    xs = xs.double()
    params = [p for p in m.parameters() if p.requires_grad]
    eig = hessian_top_eigenvalues(lambda: F.cross_entropy(m(xs), ys), params, k=k, seed=seed)
    return effective_dimensionality_from_eigs(eig, z), eig


# ---------------------------------------------------------------------------
# One row of catalogue measures for a trained zoo model
# ---------------------------------------------------------------------------

CATALOGUE_VERSION = (
    2  # 2: weightwatcher alpha added; bump when any measure below changes (invalidates cached rows)
)

# The names, directions and scales of the measures below are registered in harness.ml.registry (group
# "catalogue"); this function is their table-row builder.


def catalogue_measures(
    trained,
    flatness_draws: int = 5,
    neff_k: int = 0,
    neff_z: float = 1.0,
    neff_examples: int | None = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """The catalogue measures of a :class:`harness.ml.zoo.TrainedModel` on its full train set.

    N_eff only when ``neff_k`` > 0 (it costs ~k..3k Hessian-vector products).
    Wall seconds per measure are returned as ``time_<name>_s``.
    """
    import time

    data = trained.data()
    model = trained.model
    x, y = data.x_train, data.y_train
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    out["frobenius_sum_sq"] = frobenius_sum_sq(model)
    out["frobenius_log_prod"] = frobenius_log_prod(model)
    out["spectral_sum_sq"] = spectral_sum_sq(model)
    out["spectral_log_prod"] = spectral_log_prod(model)
    out["path_norm"] = path_norm(model, tuple(x.shape[1:]))
    out["time_norms_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["margin_p10"] = margin_percentile(model, x, y, 10.0)
    out["neg_margin_p10"] = -out["margin_p10"]
    out["time_margin_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fl = pac_bayes_flatness(model, x, y, criterion="accuracy", bound=0.1, draws=flatness_draws, seed=seed)
    out.update(pacbayes_sigma=fl.sigma, pacbayes_flatness=fl.measure, pacbayes_capped=float(fl.capped))
    out["time_pacbayes_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["weightwatcher_alpha"] = weightwatcher_alpha(model)
    out["time_weightwatcher_s"] = time.perf_counter() - t0
    if neff_k > 0:
        t0 = time.perf_counter()
        n_eff, eig = effective_dimensionality(
            model, x, y, k=neff_k, z=neff_z, max_examples=neff_examples, seed=seed
        )
        out.update(n_eff=n_eff, hessian_top_eig=float(eig[0]))
        out["time_n_eff_s"] = time.perf_counter() - t0
    return out
