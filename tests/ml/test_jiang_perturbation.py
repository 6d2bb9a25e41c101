"""The Jiang et al. / PGDL accuracy-rule perturbation (harness.ml.measures.pacbayes_sigma_accuracy).

Known cases: a network whose predictions no noise can change (displacement 0 at every step: the bisection
walks up to 2 - 2**-14), one whose accuracy any noise destroys (walks down to 2**-14), and a small trained MLP
against a line-by-line transcription of nitarshan/robust-generalization-measures
``data/generation/measures.py`` ``_pacbayes_sigma`` / ``_perturbed_model`` (deep copy, noise on every
parameter in ``model.parameters()`` order from one generator seeded 10348628753 + seed, std = sigma**2 for
the absolute variant and sigma**2 |p|**2 + eps**2 for the magnitude-aware one).
"""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import pytest
import torch
from torch import nn

from harness.ml.measures import jiang_adjusted, pacbayes_sigma_accuracy

from ._tiny import tiny_trained

torch.set_num_threads(1)


class _Constant(nn.Module):
    """Predicts class 0 whatever its (perturbed) weights: logits [1e6, 0] from a bias-free zero-input path."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        out = self.lin(torch.zeros_like(x)) * 0.0
        return out + torch.tensor([1e6, 0.0])


class _Fragile(nn.Module):
    """Correct only at exactly the trained weight: any nonzero noise on w flips every prediction."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        wrong = (self.w != 0).float()
        return torch.stack([1.0 - wrong, wrong]).expand(x.shape[0], 2) * 10.0


def test_no_displacement_walks_up_to_two():
    x = torch.randn(50, 3)
    y = torch.zeros(50, dtype=torch.long)
    for eps in (None, 1e-3):
        sigma = pacbayes_sigma_accuracy(_Constant(), x, y, magnitude_eps=eps)
        assert sigma == 2 - 2**-14  # 15 steps, lower = sigma each time


def test_full_displacement_walks_down():
    x = torch.randn(40, 3)
    y = torch.zeros(40, dtype=torch.long)
    sigma = pacbayes_sigma_accuracy(_Fragile(), x, y)
    assert sigma == 2**-14  # displacement 1.0 > 0.1 at every step: upper = sigma each time


def test_early_stop_within_tolerance():
    # displacement exactly 0.1 at sigma = 1 (first step): the search stops there
    class _TenPercent(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            n = x.shape[0]
            wrong = torch.zeros(n)
            if float(self.b) != 0:
                wrong[: n // 10] = 1.0
            return torch.stack([1.0 - wrong, wrong], dim=1) * 10.0

    x = torch.randn(100, 3)
    y = torch.zeros(100, dtype=torch.long)
    assert pacbayes_sigma_accuracy(_TenPercent(), x, y) == 1.0


def _reference_pacbayes_sigma(model, x, y, accuracy, seed, magnitude_eps=None):
    """Transcribed from the source (one batch instead of a DataLoader), for the comparison below."""
    search_depth, montecarlo_samples, accuracy_displacement, displacement_tolerance = 15, 10, 0.1, 1e-2
    lower, upper = 0, 2
    sigma = 1
    rng = torch.Generator()
    rng.manual_seed(10348628753 + seed)
    for _ in range(search_depth):
        sigma = (lower + upper) / 2
        accuracy_samples = []
        for _ in range(montecarlo_samples):
            if magnitude_eps is not None:
                noise = [
                    torch.normal(0, sigma**2 * torch.abs(p) ** 2 + magnitude_eps**2, generator=rng)
                    for p in model.parameters()
                ]
            else:
                noise = [torch.normal(0, sigma**2, p.shape, generator=rng) for p in model.parameters()]
            p_model = deepcopy(model)
            with torch.no_grad():
                [p.add_(n) for p, n in zip(p_model.parameters(), noise, strict=True)]
                pred = p_model(x).data.max(1, keepdim=True)[1]
                correct = pred.eq(y.data.view_as(pred)).type(torch.FloatTensor).sum() / len(y)
            accuracy_samples.append(correct)
        displacement = abs(np.mean(accuracy_samples) - accuracy)
        if abs(displacement - accuracy_displacement) < displacement_tolerance:
            break
        elif displacement > accuracy_displacement:
            upper = sigma
        else:
            lower = sigma
    return sigma


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_matches_the_source_on_a_trained_mlp(eps):
    model, data, _ = tiny_trained()
    x, y = data.x_train, data.y_train
    model.eval()
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    ref = _reference_pacbayes_sigma(model, x, y, acc, seed=0, magnitude_eps=eps)
    ours = pacbayes_sigma_accuracy(model, x, y, seed=0, magnitude_eps=eps)
    assert ours == pytest.approx(ref, abs=0.0)
    assert 0 < ours < 2
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_dataset_size_adjustment():
    assert jiang_adjusted(1.0 / 0.5**2, 400) == pytest.approx((4.0 / 400) ** 0.5)
