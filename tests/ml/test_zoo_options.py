"""fixtures.ml's zoo options: the default path trains nothing up front; --zoo-trainer ensemble pre-trains groups."""

from __future__ import annotations

from fixtures.ml import _pretrain_groups
from harness.ml.zoo import ModelConfig, ModelZoo

TINY = dict(dataset="digits", width=8, depth=1, lr=0.05, batch_size=128, max_epochs=2, target_train_loss=0.01)


class _Config:
    """The two getoption calls _pretrain_groups makes (pytest.Config stand-in)."""

    def __init__(self, executor: str = "local", ray_address: str | None = None):
        self.options = {"--zoo-executor": executor, "--ray-address": ray_address}

    def getoption(self, name: str):
        return self.options[name]

    @property
    def pluginmanager(self):  # progress_reporter looks for the capture manager
        class _PM:
            def getplugin(self, _name):
                return None

        return _PM()


def test_default_path_trains_nothing_up_front(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    zoo = ModelZoo(tmp_path)
    _pretrain_groups(zoo, [ModelConfig(**TINY)], _Config())  # type: ignore[arg-type]
    assert zoo.read_log() == []  # measure_family trains on demand, as before


def test_ensemble_trainer_pretrains_the_family_in_groups(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    cfgs = [ModelConfig(**{**TINY, "seed": s}) for s in range(3)]
    zoo = ModelZoo(tmp_path, trainer="ensemble")
    _pretrain_groups(zoo, cfgs, _Config())  # type: ignore[arg-type]
    trained = [e for e in zoo.read_log() if e["event"] == "trained"]
    assert sorted(e["key"] for e in trained) == sorted(zoo.entry_key(c) for c in cfgs)
    assert all(tm.cache_hit for tm in zoo.get_many(cfgs))
