"""The Allure 3 quality gate of reports/config/allurerc.mjs, run by the real CLI on tiny throwaway runs.

A known deviation (strict xfail) and a "not measurable on this target" skip are allowed; an unregistered
failure, an unregistered skip or a run without any claim test fails the gate (exit 1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLURE = ROOT / "node_modules" / ".bin" / "allure"

HEADER = '''
import pytest
from harness.claims import Claim, Paper
P = Paper("Throwaway paper", "0000.00000", "v1")
OK = Claim("Z1", P, "s", "reproduces", "x = 1", "x > 0")
DEV = Claim("Z2", P, "s", "registered deviation", "x = 1", "x > 0", {"smoke": "x = -1 (registered)"})
BAD = Claim("Z3", P, "s", "not registered", "x = 1", "x > 0")

@pytest.mark.claim(OK)
def test_reproduces(claim_report):
    claim_report({"x": 1.0}, True)

@pytest.mark.claim(DEV)
def test_known_deviation(claim_report):
    claim_report({"x": -1.0}, False)
    assert False, "x = -1"

@pytest.mark.claim(OK)
def test_not_measurable_here(claim_report):
    pytest.skip("not measurable on this target: no batches")
'''
UNREGISTERED_FAILURE = '''
@pytest.mark.claim(BAD)
def test_unregistered(claim_report):
    claim_report({"x": -2.0}, False)
    assert False, "x = -2"
'''
UNREGISTERED_SKIP = '''
def test_skipped_for_no_good_reason():
    pytest.skip("flaky")
'''
NO_CLAIMS = '''
def test_plain():
    pass
'''


def _gate(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_throwaway.py").write_text(body)
    results = tmp_path / "allure-results"
    subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_throwaway.py"), "-q", "-p", "no:xdist",
         "-p", "no:randomly", "-p", "no:cacheprovider", "-o", "addopts=", "-p", "fixtures.options",
         "-p", "fixtures.claims", "--alluredir", str(results), "--results-dir", str(tmp_path / "results"),
         "--rootdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert any(results.glob("*-result.json")), "the throwaway run left no Allure results"
    return subprocess.run([str(ALLURE), "quality-gate", str(results), "--config", "reports/config/allurerc.mjs"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


pytestmark = pytest.mark.skipif(not ALLURE.exists(), reason="node tools not installed (npm ci)")


def test_gate_passes_with_known_deviations_and_not_measurable_skips(tmp_path):
    gate = _gate(tmp_path, HEADER)
    assert gate.returncode == 0, gate.stdout + gate.stderr


def test_gate_fails_on_an_unregistered_failure(tmp_path):
    gate = _gate(tmp_path, HEADER + UNREGISTERED_FAILURE)
    assert gate.returncode == 1
    assert "unregistered-failures/maxFailures" in gate.stdout + gate.stderr


def test_gate_fails_on_an_unregistered_skip(tmp_path):
    gate = _gate(tmp_path, HEADER + UNREGISTERED_SKIP)
    assert gate.returncode == 1
    assert "unregistered-skips/maxUnregisteredSkips" in gate.stdout + gate.stderr


def test_gate_fails_when_no_claim_test_ran(tmp_path):
    gate = _gate(tmp_path, NO_CLAIMS)
    assert gate.returncode == 1
    assert "claims-ran/minTestsCount" in gate.stdout + gate.stderr
