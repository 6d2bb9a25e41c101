"""Benchmark: fast prunability (sort once, write masks into live weights) vs a torch.nn.utils.prune reference.

Run: ``python -m pytest benchmarks/test_prunability_bench.py -p no:xdist``. Both implementations must give
identical answers on these models: the same number of weights kept k, and bit-identical base and pruned
train losses. ``extra_info`` carries the claim id, the answers, the count of tied |w| values and the
speed ratio (reference / fast).

Why exact equality holds here, and when it would not: both run the same bisection on k and evaluate the
same loss, so they can only differ through *which* weights a probe keeps. The fast version removes the
smallest |w| first with ties broken by position (stable sort); ``L1Unstructured`` uses ``torch.topk``,
whose order among equal |w| is unspecified. The two masks therefore coincide at every probe unless a
probe's cut falls between weights of exactly equal magnitude. Checked on these models: mlp-w64-d2 and
cnn1d-w16-d2 have no tied |w| at all, mlp-w256-d2 has 80 weights whose |w| equals another's, none at any
probed cut -- so k and the pruned loss agree exactly. (A model with ties at a cut could legitimately
differ; the test then fails and says so rather than hiding it behind a tolerance.)
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from harness.ml.data import load_dataset
from harness.ml.models import build_model, prunable_weights
from harness.ml.pruning import prunability
from harness.ml.pruning_reference import reference_prunability
from harness.ml.training import TrainConfig, train

torch.set_num_threads(1)

CASES = {
    "mlp-w64-d2": dict(arch="mlp", width=64, depth=2, epochs=30),
    "mlp-w256-d2": dict(arch="mlp", width=256, depth=2, epochs=15),
    "cnn1d-w16-d2": dict(arch="cnn1d", width=16, depth=2, epochs=8),
}


@pytest.fixture(scope="module", params=list(CASES))
def trained_case(request):
    c = CASES[request.param]
    data = load_dataset("mnist1d")
    model = build_model(c["arch"], data.in_features, data.n_classes, c["width"], c["depth"], seed=0)
    train(model, data, TrainConfig(lr=0.02, batch_size=64, max_epochs=c["epochs"]), seed=0)
    model.eval()
    return request.param, model, data


def test_prunability_fast_vs_reference(benchmark, trained_case):
    name, model, data = trained_case
    x, y = data.x_train, data.y_train
    ref_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ref = reference_prunability(model, x, y, 0.10)
        ref_times.append(time.perf_counter() - t0)
    ref_s = statistics.median(ref_times)
    fast = benchmark.pedantic(lambda: prunability(model, x, y, 0.10), rounds=5, iterations=1, warmup_rounds=1)
    fast_s = benchmark.stats.stats.median
    mags = torch.cat([p.detach().abs().reshape(-1) for _, p in prunable_weights(model)])
    tied = int(mags.numel() - torch.unique(mags).numel())
    benchmark.extra_info.update(
        claim="A3",
        weights_with_tied_magnitude=tied,
        model=name,
        weights_total=fast.weights_total,
        k_fast=fast.weights_kept,
        k_reference=ref.weights_kept,
        pruned_loss_fast=fast.pruned_loss,
        pruned_loss_reference=ref.pruned_loss,
        fraction_kept=fast.fraction_kept,
        reference_seconds_median=ref_s,
        reference_seconds_rounds=ref_times,
        fast_seconds_median=fast_s,
        speedup_reference_over_fast=ref_s / fast_s,
    )
    assert fast.weights_total == ref.weights_total
    assert fast.weights_kept == ref.weights_kept, (
        f"{name}: k differs (fast {fast.weights_kept}, reference {ref.weights_kept}; {tied} tied |w| values)"
    )
    assert fast.base_loss == ref.base_loss, (fast.base_loss, ref.base_loss)
    assert fast.pruned_loss == ref.pruned_loss, (fast.pruned_loss, ref.pruned_loss)
