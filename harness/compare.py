"""Compare two runs' claim records, claim by claim: the CI gate on measured values and verdicts.

A run leaves one JSON record per claim test under ``<results>/claims/`` (``harness.claims.write_verdict``)
and its provenance (profile, target, commit) in ``<results>/provenance.json``. Two runs compare only when
they measured the same thing: same profile, same target (embedded systems or the same external URLs);
otherwise :class:`RunMismatch`. Then, per claim test:

- the verdict (``reproduced``) must be the same: a flip either way fails (a claim that starts to
  reproduce also means the registry in spec.py must change);
- every measured value must stay within the claim's :class:`~harness.claims.Drift` (stated in spec.py,
  recorded in each record), numbers by ``|new - base| <= abs + rel * |base|``, anything else equal;
- a claim test present in BASE but absent from NEW fails (a run that lost a claim is not a pass);
  one only in NEW is listed, not failed.

No pytest here; ``scripts/compare_runs.py`` / ``./run compare BASE [NEW]`` is the CLI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.claims import Drift

#: exit status: every claim within tolerance / a regression / the runs cannot be compared
EXIT_OK, EXIT_REGRESSION, EXIT_MISMATCH = 0, 1, 2


class RunMismatch(ValueError):
    """The two runs did not measure the same thing (profile or target differ), or one has no records."""


@dataclass
class Run:
    """One run's claim records, keyed by (claim id, test name), and its provenance."""

    path: Path
    records: dict[tuple[str, str], dict[str, Any]]
    provenance: dict[str, Any]

    @property
    def profile(self) -> str:
        profiles = {r.get("profile", "?") for r in self.records.values()}
        recorded = self.provenance.get("profile")
        if recorded:
            profiles.add(recorded)
        if len(profiles) != 1:
            raise RunMismatch(f"{self.path}: records of more than one profile: {sorted(profiles)}")
        return profiles.pop()

    @property
    def target(self) -> str | None:
        """The systems measured (``embedded`` or the external URLs); None for a run that did not record it."""
        return self.provenance.get("target")


def load_run(path: str | Path) -> Run:
    """Read a results directory (``reports/results``), or its ``claims/`` directory itself."""
    path = Path(path)
    claims_dir = path / "claims" if (path / "claims").is_dir() else path
    root = claims_dir.parent if claims_dir.name == "claims" else path
    if not claims_dir.is_dir():
        raise RunMismatch(f"{path}: no such results directory")
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for p in sorted(claims_dir.glob("*.json")):
        rec = json.loads(p.read_text())
        records[(rec["claim_id"], rec.get("test") or p.stem)] = rec
    if not records:
        raise RunMismatch(f"{path}: no claim records (claims/*.json); run ./run claims first")
    prov_path = root / "provenance.json"
    provenance = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    return Run(path=path, records=records, provenance=provenance)


def flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Leaves of a measured value: ``key``, ``key.sub``, ``key[0]``."""
    if isinstance(value, dict):
        for k in sorted(value, key=str):
            yield from flatten(value[k], f"{prefix}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class ValueChange:
    """One measured leaf that moved beyond its tolerance, disappeared or is new."""

    key: str
    base: Any
    new: Any
    allowed: str
    status: str  # "moved" | "removed" | "added"


@dataclass
class ClaimComparison:
    claim_id: str
    test: str
    base_verdict: bool | None
    new_verdict: bool | None
    compared: int = 0
    ignored: int = 0
    changes: list[ValueChange] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.new_verdict is None:
            return "MISSING"
        if self.base_verdict is None:
            return "new"
        if self.base_verdict != self.new_verdict:
            return "FLIPPED"
        if any(c.status in ("moved", "removed") for c in self.changes):
            return "MOVED"
        return "ok"

    @property
    def failed(self) -> bool:
        return self.status in ("MISSING", "FLIPPED", "MOVED")


@dataclass
class Comparison:
    base: Run
    new: Run
    claims: list[ClaimComparison]

    @property
    def failures(self) -> list[ClaimComparison]:
        return [c for c in self.claims if c.failed]

    @property
    def exit_status(self) -> int:
        return EXIT_REGRESSION if self.failures else EXIT_OK


def check_comparable(base: Run, new: Run) -> None:
    """Raise :class:`RunMismatch` unless both runs measured the same profile and target."""
    if base.profile != new.profile:
        raise RunMismatch(
            f"profiles differ: BASE {base.path} is '{base.profile}', NEW {new.path} is '{new.profile}' "
            "(compare runs of one profile: smoke with smoke, paper with paper)"
        )
    if base.target is not None and new.target is not None and base.target != new.target:
        raise RunMismatch(
            f"targets differ: BASE measured '{base.target}', NEW measured '{new.target}' "
            "(a claim measured on another system is not a regression of this one)"
        )


def within(base: float, new: float, rel: float, abs_: float) -> bool:
    if not (math.isfinite(base) and math.isfinite(new)):
        return (math.isnan(base) and math.isnan(new)) or base == new
    return abs(new - base) <= abs_ + rel * abs(base)


def compare_values(base: dict[str, Any], new: dict[str, Any], drift: Drift, out: ClaimComparison) -> None:
    """Compare two ``measured`` dicts leaf by leaf under ``drift``; record what moved in ``out``."""
    for key in sorted(set(base) | set(new)):
        bounds = drift.bounds(key)
        if bounds is None:
            out.ignored += 1
            continue
        rel, abs_ = bounds
        allowed = f"±({abs_:g} + {rel:g}·|base|)"
        b_leaves = dict(flatten(base[key], key)) if key in base else {}
        n_leaves = dict(flatten(new[key], key)) if key in new else {}
        for leaf in sorted(set(b_leaves) | set(n_leaves)):
            if leaf not in n_leaves:
                out.changes.append(ValueChange(leaf, b_leaves[leaf], None, allowed, "removed"))
                continue
            if leaf not in b_leaves:
                out.changes.append(ValueChange(leaf, None, n_leaves[leaf], allowed, "added"))
                continue
            bv, nv = b_leaves[leaf], n_leaves[leaf]
            out.compared += 1
            if _is_number(bv) and _is_number(nv):
                ok = within(float(bv), float(nv), rel, abs_)
            else:
                ok = bv == nv
                allowed = "equal"
            if not ok:
                out.changes.append(ValueChange(leaf, bv, nv, allowed, "moved"))


def compare_runs(base: Run, new: Run) -> Comparison:
    """Claim by claim: verdicts and measured values of NEW against BASE (see the module docstring)."""
    check_comparable(base, new)
    rows = []
    for key in sorted(set(base.records) | set(new.records)):
        b, n = base.records.get(key), new.records.get(key)
        cc = ClaimComparison(
            claim_id=key[0],
            test=key[1],
            base_verdict=None if b is None else bool(b["reproduced"]),
            new_verdict=None if n is None else bool(n["reproduced"]),
        )
        if b is not None and n is not None:
            drift = Drift.from_dict(n.get("drift") or b.get("drift"))
            compare_values(b.get("measured") or {}, n.get("measured") or {}, drift, cc)
        rows.append(cc)
    return Comparison(base=base, new=new, claims=rows)


def _verdict_word(v: bool | None) -> str:
    return "-" if v is None else ("reproduced" if v else "not reproduced")


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 40 else text[:39] + "…"


def format_table(cmp: Comparison) -> str:
    """A claim-by-claim table, then every value that moved, then one summary line."""
    lines = [
        f"BASE {cmp.base.path} (profile {cmp.base.profile}, target {cmp.base.target or 'unrecorded'}, "
        f"commit {str(cmp.base.provenance.get('commit', '?'))[:10]})",
        f"NEW  {cmp.new.path} (profile {cmp.new.profile}, target {cmp.new.target or 'unrecorded'}, "
        f"commit {str(cmp.new.provenance.get('commit', '?'))[:10]})",
        "",
    ]
    header = ("claim", "test", "verdict BASE -> NEW", "values", "moved", "status")
    body = []
    for c in sorted(cmp.claims, key=lambda c: (_claim_sort(c.claim_id), c.test)):
        moved = sum(ch.status in ("moved", "removed") for ch in c.changes)
        verdict = f"{_verdict_word(c.base_verdict)} -> {_verdict_word(c.new_verdict)}"
        values = f"{c.compared}" + (f" (+{c.ignored} ignored)" if c.ignored else "")
        body.append((c.claim_id, c.test, verdict, values, str(moved), c.status))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *body]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    details = [(c, ch) for c in cmp.claims for ch in c.changes]
    if details:
        lines += ["", "values that changed (allowed: the claim's drift in spec.py):"]
        for c, ch in details:
            lines.append(
                f"  {c.claim_id} {c.test}: {ch.key}: {_short(ch.base)} -> {_short(ch.new)} "
                f"[{ch.status}; allowed {ch.allowed}]"
            )
    n_fail = len(cmp.failures)
    lines += ["", f"compare: {len(cmp.claims) - n_fail}/{len(cmp.claims)} claim tests unchanged"
              + (f"; {n_fail} regressed (flipped verdict, moved value or missing claim)" if n_fail else "")]
    return "\n".join(lines)


def _claim_sort(claim_id: str) -> tuple[str, int]:
    digits = "".join(ch for ch in claim_id if ch.isdigit())
    return (claim_id.rstrip("0123456789"), int(digits or 0))
