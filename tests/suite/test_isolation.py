"""Load tests stay together on one xdist worker whatever the command line (fixtures/isolation.py).

Runs a real ``pytest -n 2`` (default ``--dist``, i.e. xdist's ``load``) in a subprocess on a throwaway
test file: every ``xdist_group("load")`` test must run on the same worker, one after another, while the
ungrouped tests still spread over both workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = '''
import json, os, time
import pytest

def _log(name, t0):
    with open(os.environ["ISOLATION_LOG"], "a") as f:
        f.write(json.dumps({"name": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                            "start": t0, "end": time.time()}) + "\\n")

@pytest.mark.xdist_group("load")
@pytest.mark.parametrize("i", range(6))
def test_load(i):
    t0 = time.time(); time.sleep(0.2); _log(f"load{i}", t0)

@pytest.mark.parametrize("i", range(12))
def test_other(i):
    t0 = time.time(); time.sleep(0.1); _log(f"other{i}", t0)
'''


@pytest.mark.parametrize("dist_args", [[], ["--dist", "worksteal"], ["--dist", "loadfile"]],
                         ids=["default-load", "worksteal", "loadfile"])
def test_load_group_runs_on_one_worker_whatever_the_dist(tmp_path: Path, dist_args: list[str]) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    xdist_group(name): group\n")
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "ISOLATION_LOG": str(log), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", *dist_args, "-p", "fixtures.isolation",
                          "-p", "no:randomly", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "-> loadgroup" in out.stdout
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    load = sorted((r for r in rows if r["name"].startswith("load")), key=lambda r: r["start"])
    assert len(load) == 6 and len({r["worker"] for r in load}) == 1, load
    assert all(a["end"] <= b["start"] for a, b in zip(load, load[1:], strict=False)), "load tests overlapped"
    assert len({r["worker"] for r in rows}) == 2, "ungrouped tests should still use both workers"


def test_dist_each_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text("def test_x():\n    pass\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "each", "-p", "fixtures.isolation",
                          "-q", str(tmp_path)], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--dist each" in out.stdout + out.stderr
