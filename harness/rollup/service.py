"""Start the rollup node as a child process (own process group), the way fixtures and tests do.

    with NodeProcess(data_dir, l1_url=..., l1_key=...) as node:
        Web3(Web3.HTTPProvider(node.url))

Readiness = the ready file appears AND ``rollup_status`` answers, raced
against the process exiting and a timeout. ``stop()`` sends SIGTERM to the
node's group (the node then kills its own engines) and, as a backstop,
SIGKILLs the engine groups it recorded in ``children.json``.
``kill9()`` simulates a crash (SIGKILL to the node only; its engines are
reaped by the next start on the same data dir, or by ``stop()``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import procs
from harness.chain.rpc import rpc_call
from harness.rollup.node import kill_stale_children

REPO = Path(__file__).resolve().parents[2]


@dataclass
class NodeProcess:
    data_dir: Path
    l1_url: str | None = None
    l1_key: str | None = None
    rollup_address: str | None = None
    extra_args: list[str] = field(default_factory=list)
    ready_timeout_s: float = 300.0  # first start may run the Groth16 setup

    proc: object = field(default=None, init=False, repr=False)
    info: dict = field(default_factory=dict, init=False)

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def log_path(self) -> Path:
        return Path(self.data_dir) / "logs" / "node.log"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "harness.rollup", "--data-dir", str(self.data_dir),
               "--ready-file", str(Path(self.data_dir) / "ready.json")]
        if self.l1_url:
            cmd += ["--l1-url", self.l1_url]
        if self.l1_key:
            cmd += ["--l1-key", self.l1_key]
        if self.rollup_address:
            cmd += ["--rollup-address", self.rollup_address]
        return cmd + list(self.extra_args)

    def start(self) -> NodeProcess:
        ready = Path(self.data_dir) / "ready.json"
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = procs.start(self.command(), self.log_path, env=env, cwd=REPO)

        def probe() -> bool:
            if not ready.is_file():
                return False
            self.info = json.loads(ready.read_text())
            return rpc_call(self.info["url"], "rollup_status", timeout=2.0) is not None

        try:
            procs.wait_ready(self.proc, probe, self.ready_timeout_s, "rollup node", self.log_path, 0.1)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill9(self) -> None:
        """Crash the node (SIGKILL, no cleanup). Its anvils keep running until reaped."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        try:
            if self.proc is not None:
                procs.kill_group(self.proc.pid, grace_s=15.0, proc=self.proc)
                self.proc = None
        finally:
            kill_stale_children(Path(self.data_dir))

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
