"""A ready-to-load chain: Uniswap V2 deployed, load accounts funded and approved.

Two entry points:

* :func:`prepare_uniswap_chain` — any JSON-RPC URL (an anvil, the rollup
  node, ...). The caller supplies a funded key (``funder``) that pays gas,
  deploys, and hands out ETH and tokens. Standard ``eth_*`` methods only
  (``mine=True`` adds ``evm_mine``, for anvil with mining off).
* :func:`start_l1` — an anvil for a chain profile (harness-owned process),
  prepared as above with mining off, then switched to the profile's gas limit
  and interval mining. Nothing is cached on-chain between sessions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import procs
from harness.chain import uniswap
from harness.chain.accounts import (
    DEFAULT_MNEMONIC,
    DEPLOYER_INDEX,
    LOAD_ACCOUNT_BASE,
    Account,
    derive_account,
    derive_accounts,
)
from harness.chain.anvil import Anvil, apply_profile, profile_anvil
from harness.chain.profiles import get_profile
from harness.chain.rpc import rpc_call, to_int


class ChainSetupError(RuntimeError):
    """Preparing a chain failed; the message carries the node's log tail."""


@dataclass
class PreparedChain:
    """Connection details of a prepared chain (JSON-able: shared between xdist workers)."""

    url: str
    profile: dict[str, Any]
    deployment: dict[str, Any]
    mnemonic: str
    account_base: int
    load_accounts: int
    setup_s: float
    pgid: int | None = None
    log_path: str | None = None
    anvil: dict[str, Any] | None = None  # the binary actually run and its --version (embedded chains)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreparedChain:
        return cls(**d)

    @property
    def uniswap(self) -> uniswap.UniswapDeployment:
        return uniswap.UniswapDeployment.from_dict(self.deployment)


def prepare_uniswap_chain(
    url: str,
    funder: Account,
    load_accounts: int,
    mnemonic: str = DEFAULT_MNEMONIC,
    account_base: int = LOAD_ACCOUNT_BASE,
    mine: bool = False,
    profile: dict[str, Any] | None = None,
    timeout_s: float = 300.0,
) -> PreparedChain:
    """Deploy Uniswap V2 on ``url`` and fund + approve ``load_accounts`` accounts of ``mnemonic``
    (BIP-44 indices ``account_base ..``). ``funder`` pays for everything (needs about
    10 ETH per load account plus deployment gas)."""
    t0 = time.monotonic()
    dep = uniswap.deploy_uniswap(url, funder, mine=mine, timeout_s=timeout_s)
    accts = derive_accounts(mnemonic, account_base, load_accounts)
    for i in range(0, len(accts), 250):
        uniswap.fund_and_approve(url, dep, funder, accts[i : i + 250], mine=mine, timeout_s=timeout_s)
    return PreparedChain(
        url=url,
        profile=dict(profile or {"name": "external"}),
        deployment=dep.as_dict(),
        mnemonic=mnemonic,
        account_base=account_base,
        load_accounts=load_accounts,
        setup_s=time.monotonic() - t0,
    )


def start_l1(
    profile_name: str,
    load_accounts: int = 100,
    worker_senders: int = 16,
    mnemonic: str = DEFAULT_MNEMONIC,
    log_dir: Path | None = None,
) -> tuple[Anvil, PreparedChain]:
    """Start an anvil for the profile, prepare it, apply the profile. The caller stops the Anvil
    (or kills ``pgid``). anvil pre-funds indices 0 .. worker_senders (deployer + one per worker)."""
    profile = get_profile(profile_name)
    node = profile_anvil(profile, accounts=1 + worker_senders, log_dir=log_dir)
    node.mnemonic = mnemonic
    node.start()  # a failure here is a ProcessError that already carries the log tail
    try:
        prepared = prepare_uniswap_chain(
            node.url,
            derive_account(mnemonic, DEPLOYER_INDEX),
            load_accounts,
            mnemonic,
            mine=True,
            profile=profile.as_dict(),
        )
        apply_profile(node.url, profile)
        latest = rpc_call(node.url, "eth_getBlockByNumber", ["latest", False])
        if to_int(latest["gasLimit"]) != profile.gas_limit:
            raise ChainSetupError(
                f"profile {profile.name}: block gas limit is {to_int(latest['gasLimit'])} after "
                f"anvil_setBlockGasLimit({profile.gas_limit})"
            )
        prepared.pgid = node.pgid
        prepared.log_path = str(node.log_path)
        prepared.anvil = node.info()["anvil"]
    except BaseException as e:
        tail = procs.log_tail(node.log_path)
        url = node.url
        node.stop()
        if isinstance(e, Exception) and not isinstance(e, ChainSetupError):
            raise ChainSetupError(
                f"preparing a {profile_name} chain on {url} failed: {type(e).__name__}: {e}\n"
                f"--- anvil log tail ({node.log_path}) ---\n{tail}"
            ) from e
        if isinstance(e, ChainSetupError):
            raise ChainSetupError(f"{e}\n--- anvil log tail ({node.log_path}) ---\n{tail}") from e
        raise
    return node, prepared
