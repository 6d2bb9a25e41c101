"""./run compare (harness.compare): two runs' claim records, claim by claim, as a CI gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.claims import Claim, Drift, Paper, verdict, write_verdict
from harness.compare import EXIT_MISMATCH, EXIT_OK, EXIT_REGRESSION, RunMismatch, compare_runs, load_run

ROOT = Path(__file__).resolve().parents[1]
PAPER = Paper("A paper", "0000.00000", "v1")
EXACT = Claim("X1", PAPER, "Table 1", "x is positive", "x = 1.0", "x > 0")
LOOSE = Claim("X2", Paper("B", "1111.11111", "v2", drift=Drift(rel=0.1)), "Fig 2", "tps high", "71 TPS", "> 12",
              drift=None)
IGNORING = Claim("X3", PAPER, "s", "st", "pv", "tol", drift=Drift(ignore=("examples",)))


def make_run(root: Path, values: dict[str, dict], reproduced: dict[str, bool] | None = None,
             profile: str = "smoke", target: str = "embedded") -> Path:
    reproduced = reproduced or {}
    for claim in (EXACT, LOOSE, IGNORING):
        if claim.id not in values:
            continue
        write_verdict(root, verdict(claim, values[claim.id], reproduced.get(claim.id, True), profile, test=f"t_{claim.id}"))
    (root / "provenance.json").write_text(json.dumps({"profile": profile, "target": target, "commit": "abc"}))
    return root


BASE = {"X1": {"tau": 0.868, "ci": [0.698, 1.0], "n": 14, "ok": True},
        "X2": {"tps": 65.0, "by_step": {"1": 18.2, "2": 36.4}},
        "X3": {"examples": 150, "holds": True}}


def _copy(values: dict, **changes) -> dict:
    out = json.loads(json.dumps(values))
    for path, v in changes.items():
        claim, key = path.split("__")
        out[claim][key] = v
    return out


def test_identical_runs_compare_clean(tmp_path):
    cmp = compare_runs(load_run(make_run(tmp_path / "a", BASE)), load_run(make_run(tmp_path / "b", BASE)))
    assert cmp.exit_status == EXIT_OK
    assert [c.status for c in cmp.claims] == ["ok", "ok", "ok"]
    assert cmp.claims[0].compared == 5  # tau, ci[0], ci[1], n, ok


def test_flipped_verdict_fails(tmp_path):
    base = load_run(make_run(tmp_path / "a", BASE))
    new = load_run(make_run(tmp_path / "b", BASE, reproduced={"X2": False}))
    cmp = compare_runs(base, new)
    assert cmp.exit_status == EXIT_REGRESSION
    assert {c.claim_id: c.status for c in cmp.claims}["X2"] == "FLIPPED"


def test_value_moved_beyond_the_claims_drift_fails(tmp_path):
    base = load_run(make_run(tmp_path / "a", BASE))
    # X1 is exact (default drift): a change in the 4th digit fails; a nested leaf is compared too
    new = load_run(make_run(tmp_path / "b", _copy(BASE, X1__ci=[0.699, 1.0])))
    cmp = compare_runs(base, new)
    assert cmp.exit_status == EXIT_REGRESSION
    x1 = cmp.claims[0]
    assert x1.status == "MOVED" and [c.key for c in x1.changes] == ["ci[0]"]


def test_value_within_the_papers_drift_passes_and_beyond_fails(tmp_path):
    base = load_run(make_run(tmp_path / "a", BASE))
    inside = load_run(make_run(tmp_path / "b", _copy(BASE, X2__tps=60.0)))  # -7.7 % < 10 %
    assert compare_runs(base, inside).exit_status == EXIT_OK
    outside = load_run(make_run(tmp_path / "c", _copy(BASE, X2__tps=45.4)))  # -30 %
    cmp = compare_runs(base, outside)
    assert cmp.exit_status == EXIT_REGRESSION
    assert {c.claim_id: c.status for c in cmp.claims}["X2"] == "MOVED"


def test_ignored_keys_are_counted_not_gated(tmp_path):
    base = load_run(make_run(tmp_path / "a", BASE))
    new = load_run(make_run(tmp_path / "b", _copy(BASE, X3__examples=97)))
    cmp = compare_runs(base, new)
    assert cmp.exit_status == EXIT_OK
    assert cmp.claims[2].ignored == 1


def test_missing_claim_fails_and_a_new_one_is_listed(tmp_path):
    base = load_run(make_run(tmp_path / "a", {k: BASE[k] for k in ("X1", "X2")}))
    new = load_run(make_run(tmp_path / "b", {k: BASE[k] for k in ("X1", "X3")}))
    cmp = compare_runs(base, new)
    assert {c.claim_id: c.status for c in cmp.claims} == {"X1": "ok", "X2": "MISSING", "X3": "new"}
    assert cmp.exit_status == EXIT_REGRESSION


def test_profiles_or_targets_that_differ_are_refused(tmp_path):
    base = load_run(make_run(tmp_path / "a", BASE))
    with pytest.raises(RunMismatch, match="profiles differ"):
        compare_runs(base, load_run(make_run(tmp_path / "b", BASE, profile="paper")))
    with pytest.raises(RunMismatch, match="targets differ"):
        compare_runs(base, load_run(make_run(tmp_path / "c", BASE, target="l2=http://x; l1=embedded")))


def test_cli_exit_codes_and_table(tmp_path):
    a, b = make_run(tmp_path / "a", BASE), make_run(tmp_path / "b", BASE, reproduced={"X1": False})
    c = make_run(tmp_path / "c", BASE, profile="paper")

    def cli(*args: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_runs.py"), *map(str, args)],
                              capture_output=True, text=True, timeout=60)

    same = cli(a, a)
    assert same.returncode == EXIT_OK, same.stderr
    assert "3/3 claim tests unchanged" in same.stdout
    flipped = cli(a, b)
    assert flipped.returncode == EXIT_REGRESSION
    assert "reproduced -> not reproduced" in flipped.stdout and "FLIPPED" in flipped.stdout
    mismatch = cli(a, c)
    assert mismatch.returncode == EXIT_MISMATCH
    assert "profiles differ" in mismatch.stderr
    assert cli(a, tmp_path / "nothing").returncode == EXIT_MISMATCH


def test_records_carry_the_drift_stated_in_the_spec():
    assert verdict(EXACT, {}, True, "smoke").drift == Drift().as_dict()
    assert verdict(LOOSE, {}, True, "smoke").drift["rel"] == 0.1  # the paper's default
    assert Drift.from_dict(verdict(IGNORING, {}, True, "smoke").drift).bounds("examples") is None
