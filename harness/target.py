"""The target a claim is measured on, and deviations registered for a target.

A deviation registered in a suite's ``spec.py`` (``Claim.known_deviations``) was measured on the
suite's own systems (the embedded rollup node and anvil chains, our model zoo): it applies only when
that *embedded* target is under test (``Claim.deviation_target``). On an external target (``--l2-url``,
``--l1-url``) a claim that fails is that target's failure, unless the user registered a deviation for
it in a file (``--deviations FILE``, :func:`load_deviation_file`).

The deviation file (JSON, or TOML by its ``.toml`` suffix) maps claim id -> {profile -> reason};
those entries apply to whatever target the run measures. Entries that should apply to one target
only go under ``targets``, each with the identity fields it must match (all given ones must)::

    {"B3": {"smoke": "our chain: 900 TPS flat"},
     "targets": [{"chain_id": 260, "client_version": "zkSync*",
                  "deviations": {"B6": {"smoke": "stable to 16 instances"}}}]}

``client_version`` and ``url`` are fnmatch patterns; ``kind`` is ``embedded`` or ``external``.
A target-keyed entry wins over an unkeyed one for the same claim and profile.
Pure module: no pytest.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"
EXTERNAL = "external"
KINDS = (EMBEDDED, EXTERNAL)
PROFILES = ("smoke", "paper")
_MATCH_FIELDS = ("kind", "url", "chain_id", "client_version")


@dataclass(frozen=True)
class Target:
    """What a claim test measured: the embedded systems or an external node, with its identity.

    ``client_version`` / ``chain_id`` come from the node itself (``web3_clientVersion``, ``eth_chainId``);
    empty / None when the test measured no node (paper A) or the node did not answer (``probe_error``).
    ``l1`` holds the same fields for the L2's settlement / baseline L1 when one is external.
    """

    kind: str = EMBEDDED
    name: str = "embedded"
    url: str = ""
    chain_id: int | None = None
    client_version: str = ""
    probe_error: str = ""
    l1: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def external(self) -> bool:
        return self.kind == EXTERNAL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for a report: kind, name, URL, client and chain id."""
        from harness.report.claim_page import target_line

        return target_line(self.as_dict())


DEFAULT_TARGET = Target()


def rpc_identity(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """``{'client_version', 'chain_id', 'probe_error'}`` of a JSON-RPC node (never raises)."""
    from harness.chain.rpc import Rpc, to_int

    out: dict[str, Any] = {"client_version": "", "chain_id": None, "probe_error": ""}
    try:
        with Rpc(url, timeout_s=timeout_s) as rpc:
            out["chain_id"] = to_int(rpc.call("eth_chainId"))
            try:
                out["client_version"] = str(rpc.call("web3_clientVersion"))
            except Exception as exc:  # noqa: BLE001 - a node without web3_clientVersion still has a chain id
                out["client_version"] = f"unknown ({type(exc).__name__}: {exc})"[:200]
    except Exception as exc:  # noqa: BLE001 - an unreachable node is recorded, the claim test decides
        out["probe_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


class DeviationFileError(ValueError):
    """The --deviations file cannot be used (unreadable, malformed, unknown claim id or profile)."""


@dataclass(frozen=True)
class UserDeviation:
    text: str
    source: str  # "FILE" or "FILE (target chain_id=260, ...)"


@dataclass
class DeviationFile:
    """Parsed ``--deviations`` file: unkeyed entries and target-keyed groups."""

    path: str
    anywhere: dict[tuple[str, str], str] = field(default_factory=dict)
    keyed: list[tuple[dict[str, Any], dict[tuple[str, str], str]]] = field(default_factory=list)

    def lookup(self, claim_id: str, profile: str, target: Target) -> UserDeviation | None:
        """The deviation registered for this claim at this profile on this target, if any."""
        for match, entries in self.keyed:
            if (claim_id, profile) in entries and target_matches(match, target):
                where = ", ".join(f"{k}={v}" for k, v in match.items())
                return UserDeviation(entries[(claim_id, profile)], f"{self.path} (target {where})")
        text = self.anywhere.get((claim_id, profile))
        return UserDeviation(text, self.path) if text is not None else None

    @property
    def needs_identity(self) -> bool:
        """True when some entry matches on what only the node can say (client version, chain id)."""
        return any(k in m for m, _ in self.keyed for k in ("chain_id", "client_version"))


def target_matches(match: dict[str, Any], target: Target) -> bool:
    for key, want in match.items():
        have = getattr(target, key)
        if key in ("url", "client_version"):
            if not fnmatch.fnmatchcase(str(have or ""), str(want)):
                return False
        elif key == "chain_id":
            if have is None or int(have) != int(want):
                return False
        elif have != want:
            return False
    return True


def _entries(where: str, data: Any, known: set[str]) -> dict[tuple[str, str], str]:
    if not isinstance(data, dict):
        raise DeviationFileError(f"{where}: expected a mapping claim id -> {{profile -> reason}}, got "
                                 f"{type(data).__name__}")
    out: dict[tuple[str, str], str] = {}
    for claim_id, per_profile in data.items():
        if claim_id not in known:
            raise DeviationFileError(f"{where}: unknown claim id {claim_id!r} (known: {', '.join(sorted(known))})")
        if not isinstance(per_profile, dict) or not per_profile:
            raise DeviationFileError(f"{where}.{claim_id}: expected a non-empty mapping profile -> reason")
        for profile, reason in per_profile.items():
            if profile not in PROFILES:
                raise DeviationFileError(f"{where}.{claim_id}: unknown profile {profile!r} "
                                         f"(one of {', '.join(PROFILES)})")
            if not isinstance(reason, str) or not reason.strip():
                raise DeviationFileError(f"{where}.{claim_id}.{profile}: the reason must be a non-empty string "
                                         "(the number measured when the deviation was registered)")
            out[(claim_id, profile)] = reason.strip()
    return out


def parse_deviations(data: Any, known_claim_ids: Iterable[str], path: str = "<deviations>") -> DeviationFile:
    """Validate a decoded deviation file (see the module docstring) against the suite's claim ids."""
    known = set(known_claim_ids)
    if not isinstance(data, dict):
        raise DeviationFileError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    data = dict(data)
    groups = data.pop("targets", [])
    result = DeviationFile(path=path, anywhere=_entries(path, data, known))
    if not isinstance(groups, list):
        raise DeviationFileError(f"{path}: 'targets' must be a list of {{identity fields..., deviations}}")
    for i, group in enumerate(groups):
        where = f"{path}: targets[{i}]"
        if not isinstance(group, dict) or "deviations" not in group:
            raise DeviationFileError(f"{where}: expected identity fields and a 'deviations' mapping")
        match = {k: v for k, v in group.items() if k != "deviations"}
        unknown = set(match) - set(_MATCH_FIELDS)
        if unknown or not match:
            raise DeviationFileError(f"{where}: match on one or more of {', '.join(_MATCH_FIELDS)}"
                                     + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
        if "kind" in match and match["kind"] not in KINDS:
            raise DeviationFileError(f"{where}: kind must be one of {', '.join(KINDS)}")
        if "chain_id" in match and not isinstance(match["chain_id"], int):
            raise DeviationFileError(f"{where}: chain_id must be an integer")
        result.keyed.append((match, _entries(f"{where}.deviations", group["deviations"], known)))
    return result


def load_deviation_file(path: str | Path, known_claim_ids: Iterable[str]) -> DeviationFile:
    """Read and validate a ``--deviations`` file (JSON, or TOML when it ends in ``.toml``)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DeviationFileError(f"--deviations {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise DeviationFileError(f"--deviations {path}: not valid {kind}: {exc}") from None
    return parse_deviations(data, known_claim_ids, str(path))
