import json
import multiprocessing as mp
import warnings

import pytest
import torch

from harness.ml.zoo import CacheCorruptionWarning, Grid, JsonCache, ModelConfig, ModelZoo, log_summary

TINY = dict(dataset="digits", width=8, depth=1, lr=0.05, batch_size=128, max_epochs=2, target_train_loss=0.01)


def test_key_is_stable_and_type_normalised():
    a = ModelConfig(**TINY)
    assert a.key() == ModelConfig(**TINY).key()
    assert ModelConfig(**{**TINY, "lr": 1}).key() == ModelConfig(**{**TINY, "lr": 1.0}).key()
    assert a.key() != ModelConfig(**{**TINY, "seed": 1}).key()
    assert len(a.key()) == 64


@pytest.mark.parametrize(
    "axes, base, match",
    [
        ({"widht": [1, 2]}, {}, r"unknown ModelConfig field\(s\) \['widht'\]"),
        ({"width": []}, {}, "axis 'width' is empty"),
        ({"width": [8, 8]}, {}, "duplicate values"),
        ({"width": [8]}, {"width": 4}, "both an axis and in base"),
        ({}, {}, "at least one axis"),
        ({"width": 8}, {}, "must be a list"),
        ({"width": [8]}, {"optimizer": "rmsprop"}, "unknown optimizer"),
        ({"arch": ["mlp", "transformer"]}, {}, "unknown arch"),
    ],
)
def test_grid_validation_errors(axes, base, match):
    with pytest.raises(ValueError, match=match):
        Grid(axes, base)


def test_grid_cartesian_product():
    g = Grid({"width": [4, 8], "lr": [0.1, 0.2, 0.3]}, {"dataset": "digits"})
    cfgs = g.configs()
    assert len(cfgs) == len(g) == 6
    assert len({c.key() for c in cfgs}) == 6
    assert {(c.width, c.lr) for c in cfgs} == {(w, lr) for w in (4, 8) for lr in (0.1, 0.2, 0.3)}


def test_cache_miss_then_hit(tmp_path):
    zoo = ModelZoo(tmp_path)
    cfg = ModelConfig(**TINY)
    first = zoo.get(cfg)
    second = ModelZoo(tmp_path).get(cfg)
    assert not first.cache_hit and second.cache_hit
    assert second.result == first.result
    for p1, p2 in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert not second.model.training
    summary = log_summary(zoo.read_log())
    assert summary["trained"] == 1 and summary["hit"] == 1 and summary["trained_more_than_once"] == []


@pytest.mark.parametrize("damage", ["truncate_weights", "garbage_meta", "missing_meta"])
def test_corrupted_entry_is_reported_and_retrained(tmp_path, damage):
    zoo = ModelZoo(tmp_path)
    cfg = ModelConfig(**TINY)
    zoo.get(cfg)
    key = cfg.key()
    wp, mp_ = zoo.weights_path(key), zoo.meta_path(key)
    if damage == "truncate_weights":
        wp.write_bytes(wp.read_bytes()[:100])
        named = str(wp)
    elif damage == "garbage_meta":
        mp_.write_text("{not json")
        named = str(mp_)
    else:
        mp_.unlink()
        named = str(mp_)
    with pytest.warns(CacheCorruptionWarning, match="corrupted cache entry") as rec:
        again = ModelZoo(tmp_path).get(cfg)
    assert any(named in str(w.message) for w in rec), [str(w.message) for w in rec]
    assert not again.cache_hit
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        assert ModelZoo(tmp_path).get(cfg).cache_hit
    events = [e["event"] for e in zoo.read_log()]
    assert events == ["trained", "corrupt", "trained", "hit"]
    assert log_summary(zoo.read_log())["trained_more_than_once"] == []


def _worker(cache_dir: str, q) -> None:
    torch.set_num_threads(1)
    zoo = ModelZoo(cache_dir)
    tms = zoo.get_many([ModelConfig(**{**TINY, "seed": s}) for s in range(4)], offset=0)
    q.put([tm.cache_hit for tm in tms])


def test_concurrent_processes_train_each_model_once(tmp_path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        results = [q.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    summary = log_summary(ModelZoo(tmp_path).read_log())
    assert summary["trained"] == 4 and summary["distinct_trained"] == 4, summary
    assert summary["trained_more_than_once"] == []
    # every model was trained by exactly one of the two processes
    assert sum(not hit for r in results for hit in r) == 4


def test_json_cache_recomputes_corrupt_entry(tmp_path):
    cache = JsonCache(tmp_path, "m")
    calls = []
    v, hit = cache.get_or_compute("k", lambda: calls.append(1) or {"a": 1.0})
    assert (v, hit) == ({"a": 1.0}, False)
    assert cache.get_or_compute("k", lambda: {"a": 2.0}) == ({"a": 1.0}, True)
    (tmp_path / "m" / "k.json").write_text("{")
    with pytest.warns(CacheCorruptionWarning, match="k.json"):
        assert cache.get_or_compute("k", lambda: {"a": 3.0}) == ({"a": 3.0}, False)
    assert json.loads((tmp_path / "m" / "k.json").read_text())["value"] == {"a": 3.0}


def test_half_written_entry_of_a_busy_writer_is_left_alone(tmp_path):
    """A .pt without its .json while another process holds the key's lock is a write in progress:
    a reader must neither report nor delete it."""
    zoo = ModelZoo(tmp_path)
    cfg = ModelConfig(**TINY)
    zoo.get(cfg)
    key = cfg.key()
    meta = zoo.meta_path(key).read_bytes()
    zoo.meta_path(key).unlink()
    with zoo.lock(key):  # FileLock is re-entrant per object, but a second ModelZoo uses its own lock object
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheCorruptionWarning)
            assert ModelZoo(tmp_path).get(cfg, blocking=False) is None
        assert zoo.weights_path(key).exists()
        zoo.meta_path(key).write_bytes(meta)  # the writer commits
    assert ModelZoo(tmp_path).get(cfg).cache_hit


def test_dropout_free_keys_are_unchanged_and_dropout_keys_carry_the_rng_format():
    import hashlib

    from harness.ml.zoo import ZOO_FORMAT

    def old_key(cfg: ModelConfig) -> str:  # the key formula before dropout masks were seeded
        payload = json.dumps({"format": ZOO_FORMAT, **cfg.canonical()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    plain = ModelConfig(**TINY)
    assert plain.key() == old_key(plain)  # cached dropout-free models stay valid
    with_dropout = ModelConfig(**{**TINY, "dropout": 0.2})
    assert with_dropout.key() != old_key(with_dropout)  # their old, unseeded-mask entries are not reused


def test_per_model_keys_are_pinned_byte_for_byte():
    """The default (per-model) trainer's cache keys must not move: the shared model cache depends on them."""
    from harness.ml import profiles

    assert ModelConfig(**TINY).key() == "3b7c80f27475a8940fc3f8892b8b68ff11528371a5b02741118a7263349307d4"
    assert (
        ModelConfig(**{**TINY, "dropout": 0.2}).key()
        == "d3a79505d11daa25cca05c871bfbf39803066aed4b400079304dde9263da98d2"
    )
    first = profiles.SMOKE_GRID.configs()[0]
    assert first.short() == "mlp w64 d2 sgd lr0.01 wd0 b32 s0"
    assert first.key() == "797ff8c51ff2de8416553587d8d8750732e498e4244fa790b277472df463f81c"


def test_default_zoo_stores_under_the_config_key_with_its_metadata(tmp_path):
    zoo = ModelZoo(tmp_path)
    cfg = ModelConfig(**TINY)
    assert zoo.trainer == "per-model" and zoo.cache_dir == tmp_path and zoo.entry_key(cfg) == cfg.key()
    tm = zoo.get(cfg)
    assert tm.key == cfg.key() and zoo.meta_path(cfg.key()).parent == tmp_path
    meta = json.loads(zoo.meta_path(cfg.key()).read_text())
    assert sorted(meta) == [
        "config", "cpu_capability", "format", "key", "result", "threads", "torch", "trained_by", "weights_sha256",
    ]
    assert meta["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # e.g. AVX512 or AVX2


def test_ensemble_zoo_keys_carry_the_trainer_and_live_in_their_own_directory(tmp_path):
    from harness.ml import ensemble
    from harness.ml.zoo import ensemble_key

    cfg = ModelConfig(**TINY)
    zoo = ModelZoo(tmp_path, trainer="ensemble")
    key = zoo.entry_key(cfg)
    assert key == ensemble_key(cfg) != cfg.key()
    assert zoo.cache_dir == tmp_path / f"trainer-ensemble-v{ensemble.TRAINER_VERSION}"
    tm = zoo.get(cfg)  # a group of one
    assert not tm.cache_hit and tm.key == key and zoo.meta_path(key).is_file()
    meta = json.loads(zoo.meta_path(key).read_text())
    assert (meta["trainer"], meta["trainer_version"], meta["group_size"]) == ("ensemble", 1, 1)
    assert ModelZoo(tmp_path, trainer="ensemble").get(cfg).cache_hit
    assert not (tmp_path / f"{cfg.key()}.json").exists()  # nothing written under the per-model key
    with pytest.raises(ValueError, match="unknown zoo trainer"):
        ModelZoo(tmp_path, trainer="vmap")


def test_group_training_writes_the_entries_get_would_and_trains_each_once(tmp_path):
    from harness.ml.executors import LocalExecutor, group_configs, pretrain

    cfgs = [ModelConfig(**{**TINY, "lr": lr, "seed": s}) for lr in (0.05, 0.1) for s in (0, 1)]
    cfgs.append(ModelConfig(**{**TINY, "width": 4}))  # another shape: its own group
    groups = group_configs(cfgs)
    assert [len(g) for g in groups] == [4, 1]
    zoo = ModelZoo(tmp_path, trainer="ensemble")
    outcomes = pretrain(zoo, cfgs, LocalExecutor())
    assert sorted(k for o in outcomes for k in o.trained) == sorted(zoo.entry_key(c) for c in cfgs)
    again = ModelZoo(tmp_path, trainer="ensemble")
    assert pretrain(again, cfgs, LocalExecutor()) == []  # nothing pending
    tms = again.get_many(cfgs)
    assert all(tm.cache_hit for tm in tms)
    summary = log_summary(again.read_log())
    assert summary["trained"] == 5 and summary["trained_more_than_once"] == []
    # the grouped member equals the same config trained alone by the ensemble trainer (MLPs: bitwise)
    alone = ModelZoo(tmp_path / "alone", trainer="ensemble").get(cfgs[2])
    for p, q in zip(alone.model.parameters(), tms[2].model.parameters(), strict=True):
        assert torch.equal(p, q)
