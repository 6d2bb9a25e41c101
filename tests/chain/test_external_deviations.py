"""Against an external L2 no embedded-node deviation appears in the results (issue 12 item 6).

A second embedded node is started here and handed to an inner pytest run of paper B's own suite as an
external target (``--l2-url``/``--l1-url``, the mechanism of test_finality_targets.py). B10 on the rollup
is registered in spec.py as a known deviation of *our* node; on the "external" chain that registration
must not apply: the claim's failure is that target's own (a plain failure), its record names the target
(URL, web3_clientVersion, chain id) and carries no known deviation (one inner run, ~60 s on 2 cores: part
of ``./run tests``). The same run with a user ``--deviations`` file keyed by that chain id, where the
failure is the user's strict xfail with their text, costs another run: marked ``target_e2e``, which the
default ``addopts`` deselect (run it with ``-m target_e2e``); tests/test_claims_records.py checks that
rule in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.rollup import l1_operator_key, start_l1
from harness.claims import collect_verdicts
from harness.rollup.service import NodeProcess
from harness.target import rpc_identity

pytestmark = [pytest.mark.chain, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
B10_TEST = "suites/rollup/test_b_rollup.py::test_b10_gps_beside_tps_on_the_rollup"


@pytest.fixture(scope="module")
def other_chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("other-chain")
    l1 = start_l1(root / "l1")
    node = NodeProcess(root / "node", l1_url=l1.url, l1_key=l1_operator_key(),
                       extra_args=["--max-blocks", "2", "--max-seconds", "2"])
    try:
        node.start()
        yield l1.url, node.url
    finally:
        try:
            node.stop()
        finally:
            l1.stop()


def _inner(tmp_path: Path, l1_url: str, l2_url: str, *args: str) -> subprocess.CompletedProcess:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", B10_TEST, "-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:randomly",
           "-q", "-rxXf", "-o", "addopts=", "--profile", "smoke", "--basetemp", str(tmp_path / "inner-tmp"),
           "--results-dir", str(tmp_path / "results"), "--l2-url", l2_url, "--l2-key", l1_operator_key(),
           "--l1-url", l1_url, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env.update({"PYTHONPATH": str(REPO), "CLAIMS_L2_LOAD_ACCOUNTS": "100"})  # the 5-instance main run
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=420)


def test_external_l2_gets_no_embedded_node_deviation(tmp_path, other_chain) -> None:
    l1_url, l2_url = other_chain
    ident = rpc_identity(l2_url)
    out = _inner(tmp_path / "own", l1_url, l2_url)
    log = out.stdout[-4000:] + out.stderr[-2000:]
    recs = collect_verdicts(tmp_path / "own" / "results")
    assert len(recs) == 1, log
    rec = recs[0]
    assert rec["target"]["kind"] == "external" and rec["target"]["url"] == l2_url, rec["target"]
    assert rec["target"]["chain_id"] == ident["chain_id"] and rec["target"]["client_version"], rec["target"]
    assert rec["known_deviation"] == "" and "known deviation" not in out.stdout, log
    # our node is not gas-bound, wherever it runs: B10 fails, and on this target that is a plain failure
    assert rec["reproduced"] is False and out.returncode == 1 and "1 failed" in out.stdout, log
    provenance = json.loads((tmp_path / "own" / "results" / "provenance.json").read_text())
    assert l2_url in provenance["target.identity"] and provenance["target.kinds"] == "external"
    print("EXTERNAL-B10", json.dumps({"target": rec["target"], "known_deviation": rec["known_deviation"],
                                      "gps_ratio": rec["measured"]["gps_ratio"],
                                      "tps_ratio": rec["measured"]["tps_ratio"]}))


@pytest.mark.target_e2e
def test_user_deviation_file_applies_on_that_external_target(tmp_path, other_chain) -> None:
    l1_url, l2_url = other_chain
    ident = rpc_identity(l2_url)
    dev = tmp_path / "theirs.toml"
    dev.write_text(f'[[targets]]\nchain_id = {ident["chain_id"]}\nurl = "{l2_url}"\n'
                   '[targets.deviations.B10]\nsmoke = "their chain is not gas-bound either"\n')
    out = _inner(tmp_path / "user", l1_url, l2_url, "--deviations", str(dev))
    log = out.stdout[-4000:] + out.stderr[-2000:]
    recs = collect_verdicts(tmp_path / "user" / "results")
    assert len(recs) == 1, log
    rec = recs[0]
    assert out.returncode == 0 and "1 xfailed" in out.stdout, log
    assert rec["known_deviation"] == "their chain is not gas-bound either", rec
    assert rec["deviation_source"].startswith(str(dev)), rec
    assert "their chain is not gas-bound either | this run: B10: NOT reproduced" in out.stdout, log
