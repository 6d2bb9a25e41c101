"""fixtures/targets.py: the external-target path, exercised against a second embedded node started as if
it were external. The outer module starts an L1 + rollup node through the harness; each inner pytest run
gets only their URLs and a funded key (options and env vars) and must use them — deploy Uniswap V2, fund
the load, run a swap load, track finality, read L1 gas — without starting any node itself. The inner run
is repeated for each finality mode: ``zks`` (zks_getBlockDetails), ``tags`` (the node's safe/finalized
tags, which follow L1 settlement) and ``auto`` (detects zks on this node)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.rollup import l1_operator_key, start_l1
from harness.rollup.service import NodeProcess

pytestmark = [pytest.mark.chain, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

PROBE = '''
import os
from harness.chain.loadgen import LoadConfig

def test_probe(l2_target, l2_load, l2_settle, target_options, tmp_path_factory):
    from harness.chain.rpc import Rpc

    assert not l2_target.embedded
    assert l2_target.url == os.environ["EXPECT_L2_URL"] and l2_target.l1_url == os.environ["EXPECT_L1_URL"]
    assert target_options.finality == os.environ["EXPECT_OPTION"]
    assert l2_target.chain.load_accounts == 4
    res = l2_load(LoadConfig("swap", instances=2, accounts_per_instance=2, txs_per_account=5, send_mode="single"))
    assert res.metrics["accounting"]["included"] == 20, res.metrics["accounting"]
    st = l2_settle(res, timeout_s=240)
    assert st["mode"] == os.environ["EXPECT_MODE"], st["mode"]
    assert len(st["records"]) == 20 and all(not r.order_violations() for r in st["records"])
    if st["mode"] == "zks":
        assert st["batches"] and all(v and v > 0 for b in st["batches"] for v in b["l1_gas"].values())
        assert all(r.executed_s and r.safe_s is None for r in st["records"])
    else:  # tags: safe/finalized observed, and 'finalized' really meant executed on L1 (cross-checked)
        assert st["batches"] is None
        assert all(r.safe_s and r.finalized_s and r.executed_s is None for r in st["records"])
        with Rpc(l2_target.url) as rpc:
            for n in {r.block_number for r in st["records"]}:
                assert rpc.call("zks_getBlockDetails", [n])["status"] == "verified", n
    root = tmp_path_factory.getbasetemp()
    assert not (root / "rollup-node").exists() and not (root / "rollup-l1").exists(), "an embedded node started"
    print("PROBE-OK", st["mode"], res.metrics["tps_sustained"], len(st["batches"] or []))
'''


def _plugins() -> list[str]:
    tree = ast.parse((REPO / "conftest.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "pytest_plugins":
            return [a for p in ast.literal_eval(node.value) for a in ("-p", p)]
    raise AssertionError("no pytest_plugins in conftest.py")


def _inner(tmp_path: Path, args: list[str], env: dict[str, str], timeout_s: float = 500):
    probe = tmp_path / "test_probe_external.py"
    probe.write_text(PROBE)
    cmd = [sys.executable, "-m", "pytest", str(probe), "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-s",
           "-o", "addopts=", "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "inner-tmp"),
           "--results-dir", str(tmp_path / "results"), *_plugins(), *args]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    for k in ("CLAIMS_L1_URL", "CLAIMS_L2_URL", "CLAIMS_L1_KEY", "CLAIMS_L2_KEY"):
        if k not in env:
            full_env.pop(k, None)
    return subprocess.run(cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def external_node(tmp_path_factory):
    """An L1 + rollup node the inner runs treat as external (one for the three finality modes)."""
    root = tmp_path_factory.mktemp("external-target")
    l1 = start_l1(root / "l1")
    node = NodeProcess(root / "ext-node", l1_url=l1.url, l1_key=l1_operator_key(),
                       extra_args=["--max-blocks", "2", "--max-seconds", "2"])
    try:
        node.start()
        yield l1.url, node.url
    finally:
        try:
            node.stop()
        finally:
            l1.stop()


@pytest.mark.parametrize(("option", "mode"), [("zks", "zks"), ("tags", "tags"), ("auto", "zks")])
def test_external_l2_by_url_runs_load_and_tracks_finality(tmp_path, external_node, option, mode) -> None:
    l1_url, l2_url = external_node
    l2_key = l1_operator_key()  # L2 dev account 0 of the test mnemonic is prefunded on the node's engine
    out = _inner(tmp_path, ["--l2-url", l2_url, "--l2-key", l2_key, "--finality", option],
                 {"CLAIMS_L1_URL": l1_url, "CLAIMS_L2_LOAD_ACCOUNTS": "4", "EXPECT_OPTION": option,
                  "EXPECT_MODE": mode, "EXPECT_L2_URL": l2_url, "EXPECT_L1_URL": l1_url})
    assert out.returncode == 0 and f"PROBE-OK {mode}" in out.stdout, out.stdout[-4000:] + out.stderr[-2000:]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--l2-url", "http://127.0.0.1:9"], "--l2-url needs --l2-key"),
        (["--l2-url", "ws://127.0.0.1:9", "--l2-key", "0x" + "11" * 32], "http(s)://"),
        (["--l2-url", "http://127.0.0.1:9", "--l2-key", "nope"], "32-byte hex"),
    ],
)
def test_bad_target_options_are_usage_errors(tmp_path, args, message) -> None:
    out = _inner(tmp_path, args, {}, timeout_s=120)
    assert out.returncode == 4, out.stdout[-2000:] + out.stderr[-2000:]  # pytest: usage error
    assert message in out.stdout + out.stderr
