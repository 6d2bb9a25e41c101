"""The one measure registry (harness.ml.registry) and the one gap function, against the row builders."""

from __future__ import annotations

import math

import pytest

import harness.ml.api as api
from harness.ml.catalogue import catalogue_measures
from harness.ml.measures import _model_measures
from harness.ml.registry import REGISTRY, functions, log_scale, names
from harness.ml.stats import generalization_gaps

from ._tiny import tiny_trained


def test_gaps():
    g = generalization_gaps(train_loss=0.1, test_loss=0.4, train_err=0.02, test_err=0.12)
    assert g == {"loss_gap": pytest.approx(0.3), "error_gap": pytest.approx(0.10)}


def test_registry_fields():
    for n, m in REGISTRY.items():
        assert m.name == n
        assert m.direction in (1, -1)
        assert m.scale in ("linear", "log")
        assert m.group in ("measures", "catalogue", "training")
        assert m.description
    assert api.MEASURES == functions()
    assert {"perturbation_absolute", "perturbation_acc_absolute", "pacbayes_flatness"} <= log_scale()
    assert names("training") == ["neg_sum_train_losses"]


def test_row_builders_produce_every_registered_column():
    model, data, res = tiny_trained()
    row = _model_measures(model, data.x_train, data.y_train, alpha=0.1, draws=5, seed=0)
    assert set(names("measures")) <= set(row)

    class _Trained:
        def __init__(self):
            self.model = model

        def data(self):
            return data

    cat = catalogue_measures(_Trained(), neff_k=3, neff_examples=200)
    assert set(names("catalogue")) <= set(cat)


@pytest.mark.parametrize(
    "name", ["prunability", "weights_kept", "frobenius", "params", "perturbation_acc_absolute", "path_norm"]
)
def test_registry_fn_equals_the_row_value(name):
    model, data, _ = tiny_trained()
    x, y = data.x_train, data.y_train
    if REGISTRY[name].group == "measures":
        row = _model_measures(model, x, y, alpha=0.1, draws=5, seed=0)
    else:

        class _Trained:
            def __init__(self):
                self.model = model

            def data(self):
                return data

        row = catalogue_measures(_Trained())
    value = REGISTRY[name].fn(model, x, y, 0.1)
    assert math.isclose(value, float(row[name]), rel_tol=1e-9), (name, value, row[name])
