"""Claim records: what a paper says, where, and how a test judges it.

A suite's ``spec.py`` builds one :class:`Claim` per claim id; tests mark
themselves with ``@pytest.mark.claim(spec.X)`` and record what they measured
with :func:`verdict` (through the ``claim_report`` fixture).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.target import EMBEDDED, Target


@dataclass(frozen=True)
class Drift:
    """How far a claim's measured values may move between two runs before ``./run compare`` fails.

    Two runs of the same profile against the same target are compared value by value: a number
    moved too far when ``|new - base| > abs + rel * |base|``; anything else (bools, strings) must be
    equal; lists and dicts are compared element by element under their top-level key's bounds.
    ``per_key`` maps a measured key to its own ``(rel, abs)``; ``ignore`` lists keys that are reported
    but never gated (say, a count of hypothesis examples). A flipped verdict always fails.
    """

    rel: float = 1e-6
    abs: float = 1e-9
    per_key: dict[str, tuple[float, float]] = field(default_factory=dict, hash=False)
    ignore: tuple[str, ...] = ()

    def bounds(self, key: str) -> tuple[float, float] | None:
        """``(rel, abs)`` for a top-level measured key; None when the key is not gated."""
        if key in self.ignore:
            return None
        return self.per_key.get(key, (self.rel, self.abs))

    def as_dict(self) -> dict[str, Any]:
        return {"rel": self.rel, "abs": self.abs, "per_key": {k: list(v) for k, v in self.per_key.items()},
                "ignore": list(self.ignore)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Drift:
        if not d:
            return DEFAULT_DRIFT
        return cls(
            rel=float(d.get("rel", DEFAULT_DRIFT.rel)),
            abs=float(d.get("abs", DEFAULT_DRIFT.abs)),
            per_key={k: (float(v[0]), float(v[1])) for k, v in (d.get("per_key") or {}).items()},
            ignore=tuple(d.get("ignore") or ()),
        )


#: the default: a claim measured deterministically (paper A is, given the model cache) must not move
DEFAULT_DRIFT = Drift()


@dataclass(frozen=True)
class Paper:
    """A versioned source a claim is pinned to.

    ``drift``: the default :class:`Drift` of this paper's claims (a claim's own ``drift`` wins).
    """

    title: str
    arxiv_id: str
    version: str
    authors: str = ""
    drift: Drift | None = None

    @property
    def ref(self) -> str:
        return f"arXiv:{self.arxiv_id}{self.version}"


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, as a test checks it.

    ``known_deviations`` maps a profile name (``smoke``/``paper``) to the
    measured value that did not reproduce; the claims plugin turns each
    entry into a strict xfail carrying that number, so the day the claim
    starts to reproduce the suite says so. Those numbers were measured on
    ``deviation_target`` (default: the embedded systems, i.e. our rollup
    node, anvil chains and model zoo): they apply only when a test measures
    a target of that kind, never to somebody else's chain.
    """

    id: str
    paper: Paper
    section: str
    statement: str
    paper_value: str
    tolerance: str
    known_deviations: dict[str, str] = field(default_factory=dict)
    #: how far its measured values may move between two runs (``./run compare``); default: the paper's
    drift: Drift | None = None
    #: the name (prefix) of the figure shown inline on the claim's page; default: the first one attached
    main_figure: str = ""
    #: the kind of target (harness.target.EMBEDDED / EXTERNAL) the registered deviations were measured on
    deviation_target: str = EMBEDDED

    def deviation_for(self, profile: str, target_kind: str = EMBEDDED) -> str | None:
        """The registered deviation at this profile, if the test measures the kind of target it was found on."""
        if target_kind != self.deviation_target:
            return None
        return self.known_deviations.get(profile)

    @property
    def effective_drift(self) -> Drift:
        return self.drift or self.paper.drift or DEFAULT_DRIFT


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return value


@dataclass
class Verdict:
    """What a test measured for a claim, beside the paper's number."""

    claim_id: str
    measured: dict[str, Any]
    reproduced: bool
    profile: str
    paper_value: str
    tolerance: str
    paper_ref: str
    detail: str = ""
    test: str = ""
    #: Drift.as_dict() of the claim: what ``./run compare`` allows (recorded so a run compares on its own)
    drift: dict[str, Any] = field(default_factory=dict)
    #: the registered known deviation at this profile, if any (a verdict False is then expected)
    known_deviation: str = ""
    #: where that deviation was registered: "spec.py" or the --deviations file (and its target match)
    deviation_source: str = ""
    #: harness.target.Target.as_dict() of what was measured: kind, name, URL, client version, chain id
    target: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def summary_line(self) -> str:
        status = "reproduced" if self.reproduced else "NOT reproduced"
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in self.measured.items())
        return f"{self.claim_id}: {status} ({values}); paper: {self.paper_value}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def verdict(
    claim: Claim,
    measured: dict[str, Any],
    reproduced: bool,
    profile: str,
    detail: str = "",
    test: str = "",
    target: Target | None = None,
    deviation: tuple[str, str] | None = None,
) -> Verdict:
    """A verdict record. ``deviation``: (text, source) as the claims plugin resolved it for this test's
    target; None: the claim's spec.py deviation for ``target``'s kind (default: the embedded target)."""
    target = target or Target()
    if deviation is None:
        text = claim.deviation_for(profile, target.kind)
        deviation = (text, "spec.py") if text else ("", "")
    return Verdict(
        claim_id=claim.id,
        measured=dict(measured),
        reproduced=bool(reproduced),
        profile=profile,
        paper_value=claim.paper_value,
        tolerance=claim.tolerance,
        paper_ref=claim.paper.ref,
        detail=detail,
        test=test,
        drift=claim.effective_drift.as_dict(),
        known_deviation=deviation[0],
        deviation_source=deviation[1] if deviation[0] else "",
        target=target.as_dict(),
    )


def write_verdict(results_dir: Path, v: Verdict) -> Path:
    """Append the verdict as one JSON file under ``results_dir/claims/``."""
    out = Path(results_dir) / "claims"
    out.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in (v.test or v.claim_id))
    path = out / f"{v.claim_id}__{safe}.json"
    path.write_text(json.dumps(v.as_dict(), indent=2, sort_keys=True))
    return path


def collect_verdicts(results_dir: Path) -> list[dict[str, Any]]:
    out = Path(results_dir) / "claims"
    if not out.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def summary_markdown(verdicts: list[dict[str, Any]]) -> str:
    """A claims table: id, paper value, measured, verdict."""
    lines = [
        "| claim | test | paper | measured | verdict |",
        "|---|---|---|---|---|",
    ]
    for v in sorted(verdicts, key=lambda d: (d["claim_id"], d.get("test", ""))):
        measured = ", ".join(f"{k}={_fmt(x)}" for k, x in v["measured"].items())
        status = "reproduced" if v["reproduced"] else "not reproduced"
        lines.append(
            f"| {v['claim_id']} | {v.get('test', '')} | {v['paper_value']} | {measured} | {status} |"
        )
    return "\n".join(lines) + "\n"
