import pytest
import torch
from torch import nn

from harness.ml.models import build_model, prunable_weights
from harness.ml.pruning import (
    loss_with_kept,
    magnitude_order,
    prunability,
    pruned_model,
    random_order,
    random_pruning,
    scan_smallest_k,
)

from ._tiny import tiny_trained


def _snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("arch,width,depth", [("mlp", 8, 1), ("mlp", 6, 2), ("cnn1d", 4, 1)])
def test_bisection_agrees_with_full_grid_scan(arch, width, depth):
    model, data, _ = tiny_trained(arch, width, depth)
    x, y = data.x_train, data.y_train
    res = prunability(model, x, y, alpha=0.10)
    k_scan = scan_smallest_k(model, x, y, alpha=0.10)  # every k in 0..N
    order = magnitude_order(model)
    thr = res.threshold
    # bisection returns a boundary: k meets the tolerance and k-1 does not
    assert loss_with_kept(model, x, y, res.weights_kept, order) <= thr
    assert res.weights_kept == 0 or loss_with_kept(model, x, y, res.weights_kept - 1, order) > thr
    # and on these models it is the smallest such k (the scan's answer)
    assert res.weights_kept == k_scan, (res, k_scan)
    assert res.weights_total == sum(p.numel() for _, p in prunable_weights(model))
    assert 0 < res.fraction_kept <= 1
    assert res.probes <= res.weights_total.bit_length() + 2


def test_search_restores_weights_and_mode():
    model, data, _ = tiny_trained()
    model.train()
    before = _snapshot(model)
    prunability(model, data.x_train, data.y_train)
    random_pruning(model, data.x_train, data.y_train, seed=1)
    loss_with_kept(model, data.x_train, data.y_train, 10)
    assert model.training
    model.eval()
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_biases_are_neither_pruned_nor_counted():
    model, data, _ = tiny_trained()
    pm = pruned_model(model, 0)
    for (name, p), (_, q) in zip(model.named_parameters(), pm.named_parameters(), strict=True):
        if name.endswith("bias"):
            assert torch.equal(p, q)
        else:
            assert torch.count_nonzero(q) == 0
    assert all(n.endswith("weight") for n, _ in prunable_weights(model))


def test_pruned_model_matches_loss_with_kept():
    model, data, _ = tiny_trained()
    res = prunability(model, data.x_train, data.y_train)
    pm = pruned_model(model, res.weights_kept)
    kept = sum(int(torch.count_nonzero(p)) for _, p in prunable_weights(pm))
    assert kept == res.weights_kept
    with torch.no_grad():
        loss = float(nn.functional.cross_entropy(pm(data.x_train), data.y_train))
    assert loss == pytest.approx(res.pruned_loss, rel=1e-6)


def test_ties_broken_deterministically_by_position():
    model = build_model("mlp", 4, 3, width=3, depth=1, seed=0)
    with torch.no_grad():
        for _, p in prunable_weights(model):
            p.fill_(0.5)
    order = magnitude_order(model)
    assert torch.equal(order, torch.arange(order.numel()))


def test_random_order_is_seeded():
    model = build_model("mlp", 4, 3, width=3, depth=1, seed=0)
    assert torch.equal(random_order(model, 3), random_order(model, 3))
    assert not torch.equal(random_order(model, 3), random_order(model, 4))


def test_magnitude_beats_random_removal_on_trained_model():
    model, data, _ = tiny_trained("mlp", 16, 1, epochs=25)
    mag = prunability(model, data.x_train, data.y_train)
    rnd = random_pruning(model, data.x_train, data.y_train, seed=0)
    assert mag.fraction_kept < rnd.fraction_kept


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, x, y: prunability(m, x, y, alpha=-0.1), "alpha"),
        (lambda m, x, y: prunability(m, x[:10], y[:5]), "equal length"),
        (lambda m, x, y: loss_with_kept(m, x, y, 10**9), "k must be"),
        (lambda m, x, y: prunability(nn.Sequential(nn.ReLU()), x, y), "no prunable weights"),
    ],
)
def test_bad_input_is_a_clear_error(call, match):
    model, data, _ = tiny_trained()
    with pytest.raises(ValueError, match=match):
        call(model, data.x_train, data.y_train)


def test_degenerate_model_whose_loss_ignores_its_weights_has_prunability_zero():
    """The definition is a minimum over k in {0..N}: when the all-pruned net already meets the tolerance
    (here the output layer is zero, so the loss is that of the bias-only predictor for every k), k* = 0."""
    model = build_model("mlp", 4, 3, width=5, depth=1, seed=0)
    with torch.no_grad():
        model.net[-1].weight.zero_()
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(1))
    res = prunability(model, x, y)
    assert res.weights_kept == 0 and res.fraction_kept == 0.0
    assert res.pruned_loss == pytest.approx(res.base_loss)


def test_a_trained_model_has_prunability_in_the_open_unit_interval():
    model, data, _ = tiny_trained()
    res = prunability(model, data.x_train, data.y_train)
    assert loss_with_kept(model, data.x_train, data.y_train, 0) > res.threshold
    assert 0 < res.fraction_kept <= 1
