"""Load generator configuration: :class:`LoadConfig`, the drain timeout (:func:`drain_timeout_for`,
:func:`drain_timeout_choice`), the target chain's gas per second and block time
(:func:`chain_rates`), and the profile error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.chain.rpc import Rpc, to_int

Workload = Literal["swap", "transfer"]

#: drain timeout = DRAIN_MARGIN x the chain's minimum time to include the workload + 3 blocks + DRAIN_SLACK_S
DRAIN_MARGIN = 2.0
DRAIN_SLACK_S = 60.0
#: used only when neither a profile nor the chain's recent blocks give a gas per second
FALLBACK_DRAIN_TIMEOUT_S = 120.0
#: an open-loop tx sent more than this after its scheduled time counts as late
LATE_S = 0.010


class ProfileMismatchError(RuntimeError):
    """A block observed on a profiled chain does not carry the profile's block gas limit."""


@dataclass
class LoadConfig:
    """One load scenario. Counts are per instance; rates in txs per second over all instances.

    ``drain_timeout_s``: seconds to wait, after sending, for every accepted tx to be included; None
    (default) derives it from the workload's gas and the chain's gas per second
    (:func:`drain_timeout_for`). ``max_inclusion_uncertainty_s``: the largest allowed gap between the
    observer's poll that missed a run block and the one that saw it (the resolution of the inclusion
    times; None: not checked). ``observe``: how the inclusion observer sees blocks: ``auto`` (a
    ``newHeads`` subscription where the target offers one, else polling every ``poll_s``; the fallback
    and its reason are recorded), ``newHeads`` (required) or ``poll``
    (:class:`~harness.chain.observe.BlockObserver`).
    """

    workload: Workload = "swap"
    instances: int = 1
    accounts_per_instance: int = 50
    txs_per_account: int = 20
    send_mode: Literal["batch", "single"] = "batch"
    batch_size: int = 100
    transport: Literal["http", "ws"] = "http"
    loop: Literal["closed", "open"] = "closed"
    target_tps: float | None = None
    alternate: bool = True
    swap_gas_margin: float = 1.0
    account_base: int = 1000
    start_delay_s: float = 1.0
    drain_timeout_s: float | None = None
    instance_timeout_s: float = 300.0
    poll_s: float = 0.02
    observe: Literal["auto", "newHeads", "poll"] = "auto"
    max_inclusion_uncertainty_s: float | None = 1.0

    def validate(self) -> None:
        if self.workload not in ("swap", "transfer"):
            raise ValueError(f"workload must be 'swap' or 'transfer', got {self.workload!r}")
        if self.send_mode not in ("batch", "single"):
            raise ValueError(f"send_mode must be 'batch' or 'single', got {self.send_mode!r}")
        if self.transport not in ("http", "ws"):
            raise ValueError(f"transport must be 'http' or 'ws', got {self.transport!r}")
        if self.observe not in ("auto", "newHeads", "poll"):
            raise ValueError(f"observe must be 'auto', 'newHeads' or 'poll', got {self.observe!r}")
        if self.loop not in ("closed", "open"):
            raise ValueError(f"loop must be 'closed' or 'open', got {self.loop!r}")
        if self.loop == "open" and not (self.target_tps and self.target_tps > 0):
            raise ValueError("loop='open' needs target_tps > 0")
        for name in ("instances", "accounts_per_instance", "txs_per_account", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.drain_timeout_s is not None and self.drain_timeout_s <= 0:
            raise ValueError(f"drain_timeout_s must be > 0 (or None: derived), got {self.drain_timeout_s}")

    @property
    def total_txs(self) -> int:
        return self.instances * self.accounts_per_instance * self.txs_per_account


def drain_timeout_for(
    n_txs: int,
    gas_limit_per_tx: int,
    gas_per_second: float,
    block_time_s: float,
    margin: float = DRAIN_MARGIN,
    slack_s: float = DRAIN_SLACK_S,
) -> float:
    """Seconds to wait for inclusion after sending: ``margin`` x the chain's minimum time to include the
    workload (``n_txs x gas_limit_per_tx / gas_per_second``: by gas *limit*, an upper bound) + 3
    block times (the first and last partial blocks, one for the observer) + ``slack_s`` (a node slower
    than its gas budget, a loaded machine). E.g. the paper-scale run, 5,000 swaps at 103 k gas limit on
    2.5 Mgas/s: 2 x 206 s + 36 s + 60 s = 508 s (they take ~175 s)."""
    if n_txs < 0 or gas_limit_per_tx <= 0 or gas_per_second <= 0 or block_time_s < 0 or margin < 1:
        raise ValueError(
            f"bad drain inputs: n_txs={n_txs}, gas_limit_per_tx={gas_limit_per_tx}, "
            f"gas_per_second={gas_per_second}, block_time_s={block_time_s}, margin={margin}"
        )
    return margin * n_txs * gas_limit_per_tx / gas_per_second + 3 * block_time_s + slack_s


def drain_timeout_choice(
    explicit_s: float | None, n_accepted: int, tx_gas_limit: int, rates: dict[str, Any]
) -> tuple[float, str]:
    """The drain timeout and how it was chosen: ``explicit_s`` (the config's) if set, else derived from
    the chain's ``rates`` (:func:`chain_rates`; :func:`drain_timeout_for`), else the fallback."""
    if explicit_s is not None:
        return explicit_s, "explicit"
    if rates["gas_per_second"]:
        drain_timeout = drain_timeout_for(
            n_accepted, tx_gas_limit, rates["gas_per_second"], rates["block_time_s"]
        )
        basis = (
            f"{DRAIN_MARGIN:g} x {n_accepted} txs x {tx_gas_limit} gas / "
            f"{rates['gas_per_second']:.4g} gas/s ({rates['basis']}) + 3 blocks + {DRAIN_SLACK_S:g} s"
        )
        return drain_timeout, basis
    return FALLBACK_DRAIN_TIMEOUT_S, "fallback (no profile, no block history)"


def chain_rates(url: str, profile: dict[str, Any] | None, sample_blocks: int = 10) -> dict[str, Any]:
    """Gas per second and block time of the target: the profile's when it has them, else estimated
    from the last ``sample_blocks`` headers (latest gas limit / mean header-timestamp gap, >= 1 s).
    ``{'gas_per_second', 'block_time_s', 'gas_limit', 'basis'}``; the rates are None if unknowable."""
    if profile and profile.get("gas_limit") and profile.get("block_time_s"):
        return {
            "gas_per_second": profile["gas_limit"] / profile["block_time_s"],
            "block_time_s": float(profile["block_time_s"]),
            "gas_limit": int(profile["gas_limit"]),
            "basis": f"profile {profile.get('name')}",
        }
    with Rpc(url) as rpc:
        head = to_int(rpc.call("eth_blockNumber"))
        first = max(0, head - sample_blocks)
        nums = list(range(first, head + 1))
        hdrs = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in nums])
    hdrs = [h for h in hdrs if h]
    if len(hdrs) < 2:
        gas_limit = to_int(hdrs[-1]["gasLimit"]) if hdrs else None
        return {"gas_per_second": None, "block_time_s": None, "gas_limit": gas_limit, "basis": "unknown"}
    ts = [to_int(h["timestamp"]) for h in hdrs]
    block_time = max(1.0, (ts[-1] - ts[0]) / (len(ts) - 1))
    gas_limit = to_int(hdrs[-1]["gasLimit"])
    return {
        "gas_per_second": gas_limit / block_time,
        "block_time_s": block_time,
        "gas_limit": gas_limit,
        "basis": f"observed (blocks {first}..{head})",
    }
