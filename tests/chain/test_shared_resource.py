"""fixtures.shared: a worker killed with SIGKILL does not leak the shared resource's refcount."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from fixtures.shared import process_token, reap_orphans, shared_resource, token_alive

REPO = Path(__file__).resolve().parents[2]


class _Factory:
    """Stands in for pytest's TempPathFactory: a worker's basetemp is ``root/<worker>``."""

    def __init__(self, root: Path, worker: str):
        self.base = root / worker
        self.base.mkdir(parents=True, exist_ok=True)

    def getbasetemp(self) -> Path:
        return self.base


def _user_that_gets_killed(root: Path, name: str) -> subprocess.Popen:
    """A process that joins the shared resource as worker gw9 and waits to be killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        from fixtures.shared import shared_resource
        class F:
            def getbasetemp(self):
                p = Path({str(root)!r}) / "gw9"; p.mkdir(exist_ok=True); return p
        with shared_resource(F(), "gw9", {name!r}, lambda: {{"made_by": "gw9"}}, lambda d: None):
            print("joined", flush=True)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "joined"
    return proc


def test_process_tokens_tell_a_live_process_from_a_dead_one() -> None:
    assert token_alive(process_token())
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    tok = process_token(p.pid)
    p.wait()
    assert not token_alive(tok)


def test_a_sigkilled_user_is_pruned_and_the_last_live_user_releases(tmp_path) -> None:
    released: list[dict] = []
    killed = _user_that_gets_killed(tmp_path, "res")
    os.kill(killed.pid, signal.SIGKILL)  # never runs its finally: its entry stays in the users file
    killed.wait()
    assert len(json.loads((tmp_path / "res.users").read_text())) == 1
    produced: list[int] = []

    def produce() -> dict:
        produced.append(1)
        return {"made_by": "gw1"}

    with shared_resource(_Factory(tmp_path, "gw1"), "gw1", "res", produce, released.append) as d:
        assert d == {"made_by": "gw9"} and not produced  # reused: alive() not given, so kept
        assert len(json.loads((tmp_path / "res.users").read_text())) == 1  # the dead user was pruned
    assert released == [{"made_by": "gw9"}]  # gw1 was the last live user
    assert not (tmp_path / "res.json").exists() and not (tmp_path / "res.users").exists()


def test_a_dead_resource_whose_users_all_died_is_made_again(tmp_path) -> None:
    released: list[dict] = []
    killed = _user_that_gets_killed(tmp_path, "res2")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    with shared_resource(
        _Factory(tmp_path, "gw1"),
        "gw1",
        "res2",
        lambda: {"made_by": "gw1"},
        released.append,
        alive=lambda d: False,
    ) as d:
        assert d == {"made_by": "gw1"}
        assert released == [{"made_by": "gw9"}]  # the stale one was released first
    assert released == [{"made_by": "gw9"}, {"made_by": "gw1"}]


def test_reap_orphans_releases_what_only_dead_users_held(tmp_path) -> None:
    released: list[dict] = []
    killed = _user_that_gets_killed(tmp_path, "l1-chain-x")
    alive = _user_that_gets_killed(tmp_path, "l1-chain-y")
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert reap_orphans(tmp_path, "l1-chain-", released.append) == ["l1-chain-x"]
        assert released == [{"made_by": "gw9"}]
        assert (tmp_path / "l1-chain-y.json").exists()  # still used by a live process
    finally:
        alive.kill()
        alive.wait()
