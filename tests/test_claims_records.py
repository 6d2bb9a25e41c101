"""The claim records and summary table (harness.claims)."""

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from harness.claims import Claim, Paper, collect_verdicts, summary_markdown, verdict, write_verdict

PAPER = Paper("A paper", "0000.00000", "v1")
CLAIM = Claim("X1", PAPER, "Table 1", "x is positive", "x = 1.0", "x > 0", {"smoke": "x=-0.1"})


def test_deviation_lookup_by_profile():
    assert CLAIM.deviation_for("smoke") == "x=-0.1"
    assert CLAIM.deviation_for("paper") is None


@given(st.floats(allow_nan=True, allow_infinity=True), st.booleans())
def test_verdict_roundtrips_through_json(tmp_path_factory, value, ok):
    out = tmp_path_factory.mktemp("v")
    v = verdict(CLAIM, {"x": value}, ok, "smoke", test="t")
    path = write_verdict(out, v)
    data = json.loads(path.read_text())
    assert data["reproduced"] is ok
    assert collect_verdicts(out)[0]["claim_id"] == "X1"
    assert "X1" in summary_markdown(collect_verdicts(out))


pytest_plugins = ["pytester"]

DEVIATING_SUITE = '''
import pytest
from harness.claims import Claim, Paper
C = Claim("Z1", Paper("p", "1", "v1"), "s", "st", "pv", "tol", {"smoke": "registered 1.0"})

@pytest.mark.claim(C)
def test_deviates(claim_report):
    claim_report(measured={"x": 2.5}, reproduced=False)
    assert False, "x=2.5"

@pytest.mark.claim(C)
def test_crashes(claim_report):
    raise KeyError("boom")

@pytest.mark.claim(C)
def test_reproduces_unexpectedly(claim_report):
    claim_report(measured={"x": 1.0}, reproduced=True)
'''


def test_known_deviation_is_strict_carries_this_runs_number_and_does_not_hide_crashes(pytester, tmp_path):
    """A registered deviation xfails only on its assertion, with the live measured value in the reason;
    a crash still fails and an unexpected pass fails (strict)."""
    pytester.makepyfile(test_suite=DEVIATING_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "fixtures.options", "-p", "fixtures.claims", "-p", "no:randomly", "-p", "no:xdist",
        "-rxXf", "--profile", "smoke", "--results-dir", str(tmp_path), "-o", "addopts=",
        "-o", f"pythonpath={Path(__file__).resolve().parents[1]}",
    )
    result.assert_outcomes(xfailed=1, failed=2)
    result.stdout.fnmatch_lines(["*XFAIL*test_deviates*registered 1.0 | this run: Z1: NOT reproduced (x=2.5)*"])
    result.stdout.fnmatch_lines(["*FAILED*test_crashes*KeyError*"])
    result.stdout.fnmatch_lines(["*FAILED*test_reproduces_unexpectedly*XPASS(strict)*"])
