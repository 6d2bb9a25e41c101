"""The vectorized ensemble trainer against the per-model trainer (cheap equivalence checks on digits).

The expensive check (a full smoke-grid training both ways: converged flags and final train losses) is
``benchmarks/test_zoo_ensemble_bench.py::test_smoke_grid_equivalence`` (``./run bench``).
"""

from __future__ import annotations

import copy

import pytest
import torch

from harness.ml.data import load_dataset
from harness.ml.ensemble import train_ensemble
from harness.ml.models import build_model
from harness.ml.training import TrainConfig, train

torch.set_num_threads(1)

# One epoch of 1500 digits in batches of 64 (24 steps): the two trainers sum in different orders, so
# parameters differ by float rounding only (measured: MLPs bit-identical, CNNs max |dp| 1.3e-6 across these cases).
PARAM_ATOL = 1e-5
LOSS_ATOL = 1e-5


def _members(arch: str, width: int, depth: int, dropout: float, seeds: list[int]):
    data = load_dataset("digits")
    return data, [build_model(arch, data.in_features, data.n_classes, width, depth, dropout, s) for s in seeds]


def _both(arch, width, depth, dropout, cfgs, seeds):
    data, models = _members(arch, width, depth, dropout, seeds)
    alone = [copy.deepcopy(m) for m in models]
    ref = [train(m, data, c, seed=s) for m, c, s in zip(alone, cfgs, seeds, strict=True)]
    got = train_ensemble(models, data, cfgs, seeds)
    return models, alone, got, ref


def _max_param_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    "arch, width, depth, dropout, optimizer",
    [
        ("mlp", 16, 2, 0.0, "sgd"),
        ("mlp", 16, 2, 0.3, "sgd"),  # dropout masks from each member's own seeded stream
        ("mlp", 12, 0, 0.0, "sgd"),  # a linear model (no hidden layer)
        ("cnn1d", 6, 2, 0.0, "sgd"),
        ("cnn1d", 6, 2, 0.2, "adam"),
        ("mlp", 16, 1, 0.0, "adam"),
    ],
)
def test_one_epoch_parameters_agree_with_the_per_model_trainer(arch, width, depth, dropout, optimizer):
    seeds = [0, 1, 2, 3]
    cfgs = [
        TrainConfig(
            optimizer=optimizer, lr=lr, momentum=mom, weight_decay=wd, batch_size=64, max_epochs=1,
            target_train_loss=1e-6,
        )
        for lr, mom, wd in [(0.01, 0.9, 0.0), (0.03, 0.9, 1e-3), (0.02, 0.0, 0.0), (0.05, 0.5, 2e-4)]
    ]
    if optimizer == "adam":
        cfgs = [TrainConfig(**{**c.__dict__, "lr": c.lr / 10}) for c in cfgs]
    models, alone, got, ref = _both(arch, width, depth, dropout, cfgs, seeds)
    for m, a, g, r in zip(models, alone, got, ref, strict=True):
        assert _max_param_diff(m, a) < PARAM_ATOL
        assert (g.epochs, g.steps, g.stop_reason) == (r.epochs, r.steps, r.stop_reason)
        assert g.epoch_train_losses == pytest.approx(r.epoch_train_losses, abs=LOSS_ATOL)
        assert g.final_train_loss == pytest.approx(r.final_train_loss, abs=LOSS_ATOL)
        assert g.final_test_acc == pytest.approx(r.final_test_acc, abs=2 / 297)  # ≤ 2 test predictions flip


def test_each_member_keeps_its_own_stopping_rule_and_stops_changing():
    """Members with different targets, epoch caps and check intervals stop where they would alone."""
    seeds = [0, 1, 2]
    cfgs = [
        TrainConfig(lr=0.05, batch_size=64, max_epochs=40, target_train_loss=0.3, check_every=1),
        TrainConfig(lr=0.05, batch_size=64, max_epochs=3, target_train_loss=1e-6, check_every=2),
        TrainConfig(lr=0.05, batch_size=64, max_epochs=40, target_train_loss=0.1, check_every=3),
    ]
    models, alone, got, ref = _both("mlp", 16, 1, 0.0, cfgs, seeds)
    assert [r.stop_reason for r in ref] == ["target_reached", "max_epochs", "target_reached"]
    assert len({r.epochs for r in ref}) == 3  # three different stopping epochs
    for m, a, g, r in zip(models, alone, got, ref, strict=True):
        assert (g.epochs, g.steps, g.stop_reason, g.converged) == (r.epochs, r.steps, r.stop_reason, r.converged)
        assert len(g.epoch_train_losses) == r.epochs
        assert g.epoch_train_losses == pytest.approx(r.epoch_train_losses, abs=1e-4)
        assert _max_param_diff(m, a) < 1e-4


def test_a_diverging_member_stops_alone_and_does_not_disturb_the_others():
    seeds = [0, 1]
    cfgs = [
        TrainConfig(lr=1e6, momentum=0.0, batch_size=64, max_epochs=4, target_train_loss=1e-6),
        TrainConfig(lr=0.05, batch_size=64, max_epochs=4, target_train_loss=1e-6),
    ]
    models, alone, got, ref = _both("mlp", 16, 1, 0.0, cfgs, seeds)
    assert got[0].stop_reason == ref[0].stop_reason == "diverged" and got[0].epochs == ref[0].epochs
    assert (got[1].epochs, got[1].stop_reason) == (4, "max_epochs")
    assert _max_param_diff(models[1], alone[1]) < 1e-4


def test_mlp_results_do_not_depend_on_the_group_they_train_in():
    data, models = _members("mlp", 16, 2, 0.0, [0, 1, 2])
    cfgs = [TrainConfig(lr=lr, batch_size=64, max_epochs=2, target_train_loss=1e-6) for lr in (0.01, 0.02, 0.03)]
    single = copy.deepcopy(models[1])
    train_ensemble(models, data, cfgs, [0, 1, 2])
    train_ensemble([single], data, [cfgs[1]], [1])
    assert all(torch.equal(p, q) for p, q in zip(single.parameters(), models[1].parameters(), strict=True))


def test_members_must_share_shapes_batch_size_and_have_no_time_cap():
    data, models = _members("mlp", 16, 1, 0.0, [0, 1])
    other = build_model("mlp", data.in_features, data.n_classes, 8, 1, 0.0, 0)
    cfg = TrainConfig(max_epochs=1)
    with pytest.raises(ValueError, match="architecture and parameter shapes"):
        train_ensemble([models[0], other], data, [cfg, cfg], [0, 1])
    with pytest.raises(ValueError, match="batch_size and optimizer"):
        train_ensemble(models, data, [cfg, TrainConfig(max_epochs=1, batch_size=32)], [0, 1])
    with pytest.raises(ValueError, match="wall-clock cap"):
        train_ensemble(models, data, [cfg, TrainConfig(max_epochs=1, time_cap_s=5.0)], [0, 1])
