"""The Ray executor against a real Ray head: the cache entries it writes equal the local executor's.

The head is ``ray start --head --block`` on 127.0.0.1 with a free port, in its own process group and its
own temp dir; ``--block`` keeps the starting process in the foreground, and on SIGTERM it stops the Ray
processes it started. The group is killed in ``finally`` (SIGTERM, then SIGKILL). ≈ 20-30 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from harness.ml.executors import (  # noqa: E402
    LOOPBACK_ENV,
    LocalExecutor,
    RayExecutor,
    group_configs,
    keep_ray_on_loopback,
    pretrain,
)
from harness.ml.zoo import ModelConfig, ModelZoo  # noqa: E402

TINY = dict(dataset="digits", width=8, depth=1, lr=0.05, batch_size=128, max_epochs=2, target_train_loss=0.01)
CFGS = [ModelConfig(**{**TINY, "lr": lr, "seed": s}) for lr in (0.05, 0.1) for s in (0, 1)] + [
    ModelConfig(**{**TINY, "arch": "cnn1d", "width": 4, "depth": 1, "seed": s}) for s in (0, 1)
]
READY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def ray_head() -> Iterator[str]:
    # The head enables token auth (a token is generated into ~/.ray/auth_token if none exists); the driver
    # must send it: RayExecutor turns it on when RAY_AUTH_MODE is unset, which sets it in os.environ,
    # so the variable is restored after the test.
    auth_mode = os.environ.pop("RAY_AUTH_MODE", None)
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's unix-socket paths are length-limited
    log_path = Path(temp) / "head.log"
    ray_cli = Path(sys.executable).parent / "ray"
    cmd = [
        str(ray_cli), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp,
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **LOOPBACK_ENV}  # every Ray socket on 127.0.0.1
    saved_env = {k: os.environ.get(k) for k in LOOPBACK_ENV}
    keep_ray_on_loopback()  # the driver (this process) resolves the head's address the same way
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:  # ready = the GCS accepts connections and the head says it started; raced against exit
            if proc.poll() is not None:
                pytest.fail(f"ray head exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            if _listening(port) and b"Ray runtime started" in log_path.read_bytes():
                break
            if time.monotonic() > deadline:
                pytest.fail(f"ray head not ready in {READY_TIMEOUT_S} s: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        # SIGTERM lets `ray start --block` stop its children; whatever is left of the group is then killed
        # (measured: gcs_server and the monitor outlive SIGTERM by > 10 s).
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(temp, ignore_errors=True)
        os.environ.pop("RAY_AUTH_MODE", None)
        if auth_mode is not None:
            os.environ["RAY_AUTH_MODE"] = auth_mode


def _entries(zoo: ModelZoo) -> dict[str, tuple[str, dict]]:
    """key -> (weights sha256, result without its wall seconds) of every entry of ``CFGS``."""
    out = {}
    for c in CFGS:
        key = zoo.entry_key(c)
        meta = json.loads(zoo.meta_path(key).read_text())
        assert zoo.weights_path(key).is_file()
        out[key] = (meta["weights_sha256"], {k: v for k, v in meta["result"].items() if k != "seconds"})
    return out


def test_ray_executor_writes_the_entries_the_local_executor_writes(ray_head, tmp_path):
    local = ModelZoo(tmp_path / "local", trainer="ensemble")
    pretrain(local, CFGS, LocalExecutor())
    remote = ModelZoo(tmp_path / "ray", trainer="ensemble")
    executor = RayExecutor(address=ray_head)
    try:
        outcomes = pretrain(remote, CFGS, executor)
    finally:
        executor.close()
    assert len(outcomes) == len(group_configs(CFGS)) == 2  # one Ray task per ensemble group
    assert all(o.worker.startswith("ray-") for o in outcomes)
    assert sorted(k for o in outcomes for k in o.trained) == sorted(remote.entry_key(c) for c in CFGS)
    assert _entries(remote) == _entries(local)  # same keys, same weight bytes, same results
    # the driver's zoo loads them as cache hits; nothing is trained twice
    assert all(tm.cache_hit for tm in ModelZoo(tmp_path / "ray", trainer="ensemble").get_many(CFGS))
    trained = [e for e in remote.read_log() if e["event"] == "trained"]
    assert len(trained) == len(CFGS) and all(e["worker"].startswith("ray-") for e in trained)
