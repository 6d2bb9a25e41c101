"""Where the zoo trains: ensemble groups, and executors that train them locally or on a Ray cluster.

:func:`group_configs` splits configs into groups that can train as one ensemble (same data, architecture,
width, depth, batch size and optimizer; at most ``max_group`` members). :func:`train_group` trains one
group into a :class:`~harness.ml.zoo.ModelZoo`: it takes each member's file lock without waiting (a member
another process holds is left to it), re-checks the cache under the lock, trains the rest as one ensemble
(:meth:`ModelZoo.train_entries`) and writes their entries exactly as :meth:`ModelZoo.get` would (same keys,
same layout, same log events).

Executors run :func:`train_group` over many groups:

- :class:`LocalExecutor` in this process, one group after the other (the default: with xdist, each worker
  walks the groups from its own offset, as :meth:`ModelZoo.get_many` does with models);
- :class:`RayExecutor` as one Ray task per group (``ray.remote(num_cpus=1)``; each task sets one torch
  thread). Without an address it starts a local Ray instance on 127.0.0.1 (``ray.init(num_cpus=...,
  include_dashboard=False, _node_ip_address="127.0.0.1")``) and shuts it down in :meth:`RayExecutor.close`;
  with ``address`` it connects to a running cluster and leaves it running.

Network: by default Ray does not keep its servers on loopback: ``ray start --head --node-ip-address
127.0.0.1`` rewrites the address to the machine's own IP (``services.resolve_ip_for_localhost`` ->
``get_node_ip_address``), and the GCS and raylet then listen on all interfaces (measured with ``ss -ltnp``:
``*:<port>``). With ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (``LOOPBACK_ENV``) ``get_node_ip_address``
returns 127.0.0.1, and every Ray socket stays on loopback (measured during the test: no listener off
127.0.0.1, no connection to the machine's own address). A local instance started here always sets it; a
single-machine head you start yourself should too; a real multi-machine cluster cannot (its nodes must
reach each other), so run one only on a trusted network. Ray's token auth guards it only when
``~/.ray/auth_token`` exists (a local ``ray.init`` writes one; ``ray start --head`` in a HOME without one
runs unauthenticated).

Several machines share one cache: every Ray node must see the zoo's cache directory at the SAME path (an
NFS or other shared mount). The task writes the entries there (tmp file + ``os.replace``, metadata last),
so the driver only receives a small summary; ``filelock`` locks on the shared mount keep "each model
trained once" across machines as across processes, provided the file system supports ``fcntl``/``flock``
locks (NFSv4 does; on one that does not, keep one writer per key by running one driver). Each node also
needs this checkout at the same path (tasks get ``PYTHONPATH`` = the driver's repository root). Results
are machine-independent only if every node runs the same torch build with one thread (recorded per entry:
``torch``, ``threads``, ``trained_by``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from harness.ml.zoo import ModelConfig, ModelZoo

#: keeps a single-machine Ray instance on loopback (see the module docstring)
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def keep_ray_on_loopback() -> None:
    """Make this process (and the Ray processes it starts, through the environment) resolve the node
    address to 127.0.0.1. Ray reads the variable into a module constant at import, so that constant is set
    too (this process may have imported ray already)."""
    os.environ.update(LOOPBACK_ENV)
    import ray._private.ray_constants as ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False

EXECUTORS = ("local", "ray")
REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_GROUP = 16


def group_signature(cfg: ModelConfig) -> tuple:
    """Configs with equal signatures train in one ensemble (everything the stacked tensors share)."""
    return (
        cfg.dataset,
        cfg.data_seed,
        float(cfg.label_noise),
        cfg.noise_seed,
        cfg.arch,
        cfg.width,
        cfg.depth,
        cfg.batch_size,
        cfg.optimizer,
        cfg.time_cap_s is None,
    )


def group_configs(cfgs: Iterable[ModelConfig], max_group: int = MAX_GROUP) -> list[list[ModelConfig]]:
    """Ensemble groups of ``cfgs`` (first-seen order of signatures, members in input order), split into
    chunks of at most ``max_group``; duplicate configs are kept once."""
    groups: dict[tuple, list[ModelConfig]] = {}
    seen: set[str] = set()
    for c in cfgs:
        if c.key() in seen:
            continue
        seen.add(c.key())
        groups.setdefault(group_signature(c), []).append(c)
    out: list[list[ModelConfig]] = []
    for members in groups.values():
        out.extend(members[i : i + max_group] for i in range(0, len(members), max_group))
    return out


@dataclass
class GroupOutcome:
    """What one :func:`train_group` call did: keys trained, found in the cache, left to another process."""

    trained: list[str]
    cached: list[str]
    busy: list[str]
    seconds: float
    worker: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def train_group(
    zoo: ModelZoo, cfgs: Sequence[ModelConfig], progress: Callable[[str], None] | None = None
) -> GroupOutcome:
    """Train the members of one group that nobody has trained or is training (see the module docstring)."""
    t0 = time.perf_counter()
    held, todo, cached, busy = [], [], [], []
    try:
        for c in cfgs:
            key = zoo.entry_key(c)
            lock = zoo.lock(key)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                busy.append(key)
                continue
            held.append(lock)
            if zoo._load(c, key) is not None:  # judged under the lock: a bad entry is reported, then retrained
                cached.append(key)
            else:
                todo.append(c)
        trained = zoo.train_entries(todo, progress) if todo else []
    finally:
        for lock in held:
            lock.release()
    return GroupOutcome(
        trained=[tm.key for tm in trained],
        cached=cached,
        busy=busy,
        seconds=time.perf_counter() - t0,
        worker=zoo.worker,
    )


def pending_groups(zoo: ModelZoo, cfgs: Iterable[ModelConfig], offset: int = 0) -> list[list[ModelConfig]]:
    """Groups of the configs without a committed entry, rotated by ``offset`` groups."""
    missing = [c for c in cfgs if zoo.lookup(c) is None]
    groups = group_configs(missing)
    if not groups:
        return []
    k = offset % len(groups)
    return groups[k:] + groups[:k]


class LocalExecutor:
    """Train groups in this process, one after the other."""

    name = "local"

    def run(
        self, zoo: ModelZoo, groups: Sequence[Sequence[ModelConfig]], progress: Callable[[str], None] | None = None
    ) -> list[GroupOutcome]:
        return [train_group(zoo, g, progress) for g in groups]

    def close(self) -> None:
        pass


def _ray_task(root: str, trainer: str, threads: int | None, cfg_dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """One Ray task: rebuild the zoo on the node (same cache path) and train one group into it."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    zoo = ModelZoo(root, worker=f"ray-{os.uname().nodename}-{os.getpid()}", threads=threads, trainer=trainer)
    return train_group(zoo, [ModelConfig.from_dict(d) for d in cfg_dicts]).as_dict()


class RayExecutor:
    """Train each group as one Ray task (see the module docstring for addresses and shared caches)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        import ray

        self._ray = ray
        self.address = address or None
        # Tasks import harness.* from this checkout: every node needs it at the same path (see above).
        runtime_env = {"env_vars": {"PYTHONPATH": str(REPO_ROOT)}}
        if self.address:
            _use_token_auth_if_available()
            ray.init(address=self.address, runtime_env=runtime_env, log_to_driver=False)
            self.started_local = False
        else:
            keep_ray_on_loopback()  # every Ray socket on 127.0.0.1 (module docstring)
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                runtime_env=runtime_env,
                log_to_driver=False,
            )
            self.started_local = True
        self._remote = ray.remote(num_cpus=1)(_ray_task)

    def run(
        self, zoo: ModelZoo, groups: Sequence[Sequence[ModelConfig]], progress: Callable[[str], None] | None = None
    ) -> list[GroupOutcome]:
        refs = [
            self._remote.remote(str(zoo.root_dir), zoo.trainer, zoo.threads, [c.canonical() for c in g])
            for g in groups
        ]
        out = [GroupOutcome(**d) for d in self._ray.get(refs)]
        if progress is not None:
            n = sum(len(o.trained) for o in out)
            progress(f"[{zoo.worker}] ray: {len(groups)} groups, {n} models trained on the cluster")
        return out

    def close(self) -> None:
        self._ray.shutdown()


def _use_token_auth_if_available() -> None:
    """Connect with Ray's token auth when a token exists (``~/.ray/auth_token``) and ``RAY_AUTH_MODE`` is
    unset: a head started by ``ray start`` enables token auth whenever a token exists, and a driver that
    does not send it is refused (``InvalidAuthToken``). Ray's own helper, as ``ray.init`` uses it for a
    local instance; it sets ``RAY_AUTH_MODE=token`` in this process."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # another Ray version: leave it to Ray's defaults
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def make_executor(name: str, ray_address: str | None = None) -> LocalExecutor | RayExecutor:
    """``local`` or ``ray`` (``ray_address`` None: a local Ray instance on 127.0.0.1)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=ray_address)
    raise ValueError(f"unknown zoo executor {name!r}: expected one of {EXECUTORS}")


def pretrain(
    zoo: ModelZoo,
    cfgs: Iterable[ModelConfig],
    executor: LocalExecutor | RayExecutor,
    offset: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[GroupOutcome]:
    """Train every missing config of ``cfgs`` in ensemble groups on ``executor``; afterwards
    :meth:`ModelZoo.get` finds them in the cache (or waits for the ones another process was training)."""
    return executor.run(zoo, pending_groups(zoo, cfgs, offset), progress)


__all__ = [
    "EXECUTORS",
    "GroupOutcome",
    "LocalExecutor",
    "RayExecutor",
    "group_configs",
    "make_executor",
    "pending_groups",
    "pretrain",
    "train_group",
]
