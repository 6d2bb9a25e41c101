"""The training stopping rule (train CE <= target on the full train set) and the converged flag."""

from __future__ import annotations

import math

import pytest
import torch

from harness.ml.data import load_dataset
from harness.ml.models import build_model
from harness.ml.training import TrainConfig, dropout_seed, evaluate, train

torch.set_num_threads(1)


def _fresh(width: int = 16, dropout: float = 0.0, seed: int = 0):
    data = load_dataset("digits")
    return build_model("mlp", data.in_features, data.n_classes, width, 1, dropout=dropout, seed=seed), data


def test_stops_at_the_first_check_where_full_train_ce_meets_the_target():
    model, data = _fresh()
    checks = []
    cfg = TrainConfig(lr=0.05, batch_size=64, max_epochs=200, target_train_loss=0.2, check_every=2)
    res = train(model, data, cfg, seed=0, progress=lambda e, loss: checks.append((e, loss)))
    assert res.converged and res.stop_reason == "target_reached"
    # checked every 2 epochs on the full train set; stopped at the first passing check
    assert [e for e, _ in checks] == list(range(2, res.epochs + 1, 2))
    assert all(loss > 0.2 for _, loss in checks[:-1]) and checks[-1][1] <= 0.2
    assert res.epochs < 200 and len(res.epoch_train_losses) == res.epochs
    full_loss, full_acc = evaluate(model, data.x_train, data.y_train)
    assert res.final_train_loss == pytest.approx(full_loss) and res.final_train_loss <= 0.2
    assert res.final_train_acc == pytest.approx(full_acc)
    assert res.steps == res.epochs * math.ceil(data.n_train / 64)


def test_epoch_cap_leaves_the_model_unconverged_and_says_why():
    model, data = _fresh(width=4)
    res = train(model, data, TrainConfig(lr=0.01, max_epochs=2, target_train_loss=0.01), seed=0)
    assert not res.converged and res.stop_reason == "max_epochs" and res.epochs == 2
    assert res.final_train_loss > 0.01


def test_time_cap_stops_training_unconverged():
    model, data = _fresh()
    res = train(
        model, data, TrainConfig(lr=0.01, max_epochs=10_000, target_train_loss=1e-6, time_cap_s=0.0), seed=0
    )
    assert res.stop_reason == "time_cap" and res.epochs == 1 and not res.converged


def test_divergence_is_reported_and_unconverged():
    model, data = _fresh()
    res = train(model, data, TrainConfig(lr=1e6, momentum=0.0, max_epochs=50), seed=0)
    assert res.stop_reason == "diverged" and not res.converged


def test_converged_flag_is_the_final_full_train_ce_against_the_target():
    model, data = _fresh()
    res = train(model, data, TrainConfig(lr=0.05, max_epochs=3, target_train_loss=10.0), seed=0)
    assert res.converged and res.epochs == 1  # CE of any sane net after one epoch is < 10 nats


def test_dropout_training_is_a_function_of_the_seed_and_leaves_the_global_rng_alone():
    cfg = TrainConfig(lr=0.05, max_epochs=3, target_train_loss=1e-6)
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)  # a caller's arbitrary global RNG state
        before = torch.random.get_rng_state()
        model, data = _fresh(dropout=0.3)
        res = train(model, data, cfg, seed=5)
        assert torch.equal(torch.random.get_rng_state(), before), "train() must not consume the caller's RNG"
        results.append((res.epoch_train_losses, [p.detach().clone() for p in model.parameters()]))
    assert results[0][0] == results[1][0]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1], strict=True))
    # another seed gives other dropout masks
    model, data = _fresh(dropout=0.3)
    assert train(model, data, cfg, seed=6).epoch_train_losses != results[0][0]
    assert dropout_seed(5) != 5


def test_without_dropout_training_ignores_the_global_rng():
    cfg = TrainConfig(lr=0.05, max_epochs=2, target_train_loss=1e-6)
    losses = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model, data = _fresh()
        losses.append(train(model, data, cfg, seed=0).epoch_train_losses)
    assert losses[0] == losses[1]
