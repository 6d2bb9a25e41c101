"""Chain profiles as data: block time and block gas limit, recorded in every result.

The L1 profiles keep mainnet's gas per second (30 M gas per 12 s block =
2.5 Mgas/s). ``mainnet-scaled`` keeps the same gas per second with 1 s
blocks, so a short run sees many blocks. ``l2-like`` is a fast chain with a
large gas limit (the execution engine is the limit, not the block).

How anvil fills a block (measured on 1.7.1): the next pooled tx goes in while
its gas *limit* fits in the gas left after the gas *used* so far (geth's
builder rule), so a block holds floor((gas limit - tx gas limit) / gas used)
+ 1 txs: 28 swaps of 103 k limit / 87.7 k used in 2.5 M, 343 in 30 M (a
pure gas-limit packing would give 24 and 290). The load generator therefore
sends swaps with a tight explicit gas limit (see :mod:`harness.chain.loadgen`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ChainProfile:
    """A block-production setting.

    ``block_time_s``: seconds between blocks (interval mining; whole seconds
    on anvil's ``evm_setIntervalMining``). ``gas_limit``: block gas limit in
    gas units. ``base_fee_wei``: the constant base fee used on anvil (0 = no
    fee market; a fee market does not change what fits in a block but would
    price a long flood out of a fixed max fee).
    """

    name: str
    block_time_s: float
    gas_limit: int
    description: str
    base_fee_wei: int = 0

    @property
    def gas_per_second(self) -> float:
        """Block gas limit / block time, in gas per second."""
        return self.gas_limit / self.block_time_s

    def ceiling_tps(self, gas_per_tx: float) -> float:
        """The gas-per-second ceiling in transactions per second for txs of ``gas_per_tx`` gas each."""
        if gas_per_tx <= 0:
            raise ValueError(f"gas_per_tx must be > 0, got {gas_per_tx}")
        return self.gas_per_second / gas_per_tx

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gas_per_second"] = self.gas_per_second
        return d


PROFILES: dict[str, ChainProfile] = {
    p.name: p
    for p in (
        ChainProfile("mainnet", 12, 30_000_000, "Ethereum L1: 12 s slots, 30 M gas (2.5 Mgas/s)"),
        ChainProfile("mainnet-36m", 12, 36_000_000, "Ethereum L1 after the 36 M gas limit raise (3 Mgas/s)"),
        ChainProfile("mainnet-60m", 12, 60_000_000, "Ethereum L1 at a 60 M gas limit (5 Mgas/s)"),
        ChainProfile(
            "mainnet-scaled",
            1,
            2_500_000,
            "L1 time-scaled: 1 s blocks, 2.5 M gas = mainnet's 2.5 Mgas/s, many blocks in a short run",
        ),
        ChainProfile("l2-like", 1, 1_000_000_000, "fast chain: 1 s blocks, 1 G gas (execution-bound)"),
    )
}


def get_profile(name: str) -> ChainProfile:
    """The profile called ``name``; a clear error listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown chain profile {name!r}; known: {', '.join(PROFILES)}") from None
