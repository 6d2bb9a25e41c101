"""The claim records and summary table (harness.claims)."""

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fixtures.claims import select_deviation
from harness.claims import Claim, Paper, collect_verdicts, summary_markdown, verdict, write_verdict
from harness.target import EMBEDDED, EXTERNAL, Target, parse_deviations

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


# --- deviations belong to a target (issue 12 item 6) -------------------------------------------------

EMBEDDED_NODE = Target(EMBEDDED, "embedded rollup node", "http://127.0.0.1:1", 31337, "anvil/v1")
OTHER_CHAIN = Target(EXTERNAL, "external L2", "http://127.0.0.1:2", 260, "zkSync/v28.1.0")


def test_spec_deviation_applies_on_the_embedded_target_only():
    assert select_deviation(CLAIM, "smoke", EMBEDDED_NODE, None) == ("x=-0.1", "spec.py")
    assert select_deviation(CLAIM, "smoke", OTHER_CHAIN, None) is None  # that chain's failure is its own
    assert select_deviation(CLAIM, "paper", EMBEDDED_NODE, None) is None
    assert CLAIM.deviation_for("smoke", EXTERNAL) is None


def test_a_claim_measured_elsewhere_carries_its_target_kind():
    ext = Claim("X2", PAPER, "s", "st", "pv", "tol", {"smoke": "on theirs"}, deviation_target=EXTERNAL)
    assert select_deviation(ext, "smoke", OTHER_CHAIN, None) == ("on theirs", "spec.py")
    assert select_deviation(ext, "smoke", EMBEDDED_NODE, None) is None


def test_user_file_applies_on_its_target():
    user = parse_deviations({
        "X1": {"paper": "any target: 0.2"},
        "targets": [{"chain_id": 260, "client_version": "zkSync/*",
                     "deviations": {"X1": {"smoke": "their chain: x=-3"}}}],
    }, {"X1"}, "mine.json")
    text, source = select_deviation(CLAIM, "smoke", OTHER_CHAIN, user)
    assert text == "their chain: x=-3" and source.startswith("mine.json (target chain_id=260")
    # the keyed entry does not match the embedded node: the spec.py deviation stays in force there
    assert select_deviation(CLAIM, "smoke", EMBEDDED_NODE, user) == ("x=-0.1", "spec.py")
    # an unkeyed entry applies to whatever target is measured, and wins over spec.py
    assert select_deviation(CLAIM, "paper", OTHER_CHAIN, user) == ("any target: 0.2", "mine.json")
    assert select_deviation(CLAIM, "paper", EMBEDDED_NODE, user) == ("any target: 0.2", "mine.json")
    other = Target(EXTERNAL, "external L2", "http://x", 261, "zkSync/v28")
    assert select_deviation(CLAIM, "smoke", other, user) is None


def test_verdict_record_carries_target_and_deviation_source(tmp_path):
    v = verdict(CLAIM, {"x": -2.0}, False, "smoke", test="t", target=OTHER_CHAIN)
    data = json.loads(write_verdict(tmp_path, v).read_text())
    assert data["known_deviation"] == "" and data["deviation_source"] == ""
    assert data["target"] == {"kind": "external", "name": "external L2", "url": "http://127.0.0.1:2",
                              "chain_id": 260, "client_version": "zkSync/v28.1.0", "probe_error": "", "l1": {}}
    v = verdict(CLAIM, {"x": -2.0}, False, "smoke", test="t")  # no target given: the embedded default
    assert (v.known_deviation, v.deviation_source, v.target["kind"]) == ("x=-0.1", "spec.py", "embedded")


TARGETED_SUITE = '''
import pytest
from harness.claims import Claim, Paper
from harness.target import EXTERNAL, Target

C = Claim("B3", Paper("p", "1", "v1"), "s", "st", "pv", "tol", {"smoke": "embedded node: 1.0"})


@pytest.hookimpl
def pytest_claim_target(item, request):
    if "external" in item.name:
        return Target(EXTERNAL, "external L2", "http://127.0.0.1:9", 260, "zkSync/v28.1.0")
    return None


@pytest.mark.claim(C)
def test_on_embedded(claim_report):
    claim_report(measured={"x": 2.5}, reproduced=False)
    assert False, "x=2.5"


@pytest.mark.claim(C)
def test_on_external(claim_report):
    claim_report(measured={"x": 3.5}, reproduced=False)
    assert False, "x=3.5"
'''


def _run_targeted(pytester, tmp_path, *args):
    pytester.makeconftest(TARGETED_SUITE.split("@pytest.mark.claim")[0])
    pytester.makepyfile(test_suite=TARGETED_SUITE)
    return pytester.runpytest_subprocess(
        "-p", "fixtures.options", "-p", "fixtures.claims", "-p", "no:randomly", "-p", "no:xdist",
        "-rxXf", "--profile", "smoke", "--results-dir", str(tmp_path), "-o", "addopts=",
        "-o", f"pythonpath={Path(__file__).resolve().parents[1]}", *args,
    )


def test_external_target_gets_no_embedded_deviation_and_a_user_file_applies_on_it(pytester, tmp_path):
    """The same registered deviation: xfail on the embedded target, a plain failure on the external one;
    with the user's file keyed by that chain's identity, the external failure is their strict xfail."""
    result = _run_targeted(pytester, tmp_path / "r1")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*XFAIL*test_on_embedded*embedded node: 1.0 | this run:*x=2.5*"])
    result.stdout.fnmatch_lines(["*FAILED*test_on_external*x=3.5*"])
    records = {d["test"]: d for d in collect_verdicts(tmp_path / "r1")}
    assert records["test_on_external"]["known_deviation"] == ""
    assert records["test_on_external"]["target"]["client_version"] == "zkSync/v28.1.0"
    assert records["test_on_embedded"]["known_deviation"] == "embedded node: 1.0"
    assert records["test_on_embedded"]["target"]["kind"] == "embedded"

    dev = tmp_path / "mine.json"
    dev.write_text(json.dumps({"targets": [{"chain_id": 260, "deviations": {"B3": {"smoke": "theirs: 3.0"}}}]}))
    result = _run_targeted(pytester, tmp_path / "r2", "--deviations", str(dev))
    result.assert_outcomes(xfailed=2)
    result.stdout.fnmatch_lines(["*XFAIL*test_on_external*registered in*mine.json (target chain_id=260)*"
                                 "theirs: 3.0 | this run:*x=3.5*"])
    records = {d["test"]: d for d in collect_verdicts(tmp_path / "r2")}
    assert records["test_on_external"]["known_deviation"] == "theirs: 3.0"
    assert records["test_on_embedded"]["deviation_source"] == "spec.py"


def test_bad_deviation_file_is_a_usage_error(pytester, tmp_path):
    dev = tmp_path / "bad.json"
    dev.write_text(json.dumps({"B42": {"smoke": "x"}}))
    result = _run_targeted(pytester, tmp_path / "r", "--deviations", str(dev))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown claim id 'B42'*"])


def test_claim_page_shows_the_target_and_where_the_deviation_was_registered():
    from harness.report.claim_page import ClaimPage, claim_page_html

    v = verdict(CLAIM, {"x": -2.0}, False, "smoke", test="t", target=OTHER_CHAIN,
                deviation=("their chain: x=-3", "mine.json (target chain_id=260)"))
    page = ClaimPage("X1", "x is positive", "Table 1", PAPER.ref, "x = 1.0", "x > 0", "smoke",
                     registered_deviation=v.known_deviation, deviation_source=v.deviation_source,
                     target=v.target, verdicts=[v.as_dict()], outcome="xfailed")
    text = claim_page_html(page)
    assert ("Target: <b>external: external L2; http://127.0.0.1:2; client zkSync/v28.1.0; chain id 260</b>"
            in text)
    assert "Known deviation registered in mine.json (target chain_id=260): their chain: x=-3" in text
    assert "known deviation" in text  # the verdict badge
