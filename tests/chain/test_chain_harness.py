"""The chain harness against real anvil processes: lifecycle, generic deployment, a tiny load run."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from harness import procs
from harness.chain import uniswap
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account, derive_accounts, worker_index
from harness.chain.anvil import ANVIL_BIN, CAST_BIN, Anvil, anvil_binary, anvil_version, profile_anvil
from harness.chain.l1 import prepare_uniswap_chain, start_l1
from harness.chain.loadgen import LoadConfig, run_load
from harness.chain.profiles import ChainProfile, get_profile
from harness.chain.rpc import Rpc, RpcError

pytestmark = pytest.mark.chain


def test_anvil_lifecycle_own_group_and_log(tmp_path) -> None:
    node = Anvil(log_dir=tmp_path).start()
    try:
        assert node.url.startswith("http://127.0.0.1:")
        assert os.getpgid(node.proc.pid) == node.proc.pid  # own process group
        with Rpc(node.url) as rpc:
            assert int(rpc.call("eth_chainId"), 16) == 31337
        pid = node.proc.pid
    finally:
        node.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert node.log_path.is_file()


def test_anvil_binds_port_zero_and_reports_the_port_it_got(tmp_path) -> None:
    """No pick-then-bind race: anvil binds port 0 and its own "Listening on" line gives the port."""
    a, b = Anvil(log_dir=tmp_path).start(), Anvil(log_dir=tmp_path).start()
    try:
        assert "--port" in a.command() and a.port != b.port
        for node in (a, b):
            assert f"Listening on 127.0.0.1:{node.port}" in node.log_path.read_text()
        assert a.log_path != b.log_path
    finally:
        a.stop()
        b.stop()


def test_the_anvil_binary_is_an_explicit_choice(monkeypatch, tmp_path) -> None:
    info = anvil_version()
    assert info["version"] == "1.7.1" and info["source"] == "npm", info  # package-lock.json pins 1.7.1
    monkeypatch.setenv("ANVIL_BINARY", str(tmp_path / "no-such-anvil"))
    with pytest.raises(FileNotFoundError, match="ANVIL_BINARY"):
        anvil_binary()
    monkeypatch.setenv("ANVIL_BINARY", str(ANVIL_BIN))
    assert anvil_binary() == ANVIL_BIN


def test_anvil_refuses_a_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with pytest.raises(procs.ProcessError, match="already in use"):
            Anvil(port=s.getsockname()[1]).start()


def test_bad_inputs_get_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown chain profile"):
        get_profile("mainnet-1")
    with pytest.raises(ValueError, match="fractional"):
        profile_anvil(ChainProfile("x", 0.5, 1_000_000, "half-second blocks"))
    with pytest.raises(ValueError, match="http"):
        Rpc("127.0.0.1:8545")
    with pytest.raises(ValueError, match="target_tps"):
        LoadConfig(loop="open").validate()
    with pytest.raises(ValueError, match="instances"):
        LoadConfig(instances=0).validate()
    with pytest.raises(ValueError):
        worker_index("node7")


def test_deploy_on_a_generic_chain_without_anvil_methods(tmp_path) -> None:
    """Automine anvil, mine=False: only eth_* methods are used; cast (independent client) reads the pool."""
    with Anvil(log_dir=tmp_path) as node:
        funder = derive_account(DEFAULT_MNEMONIC, 0)
        chain = prepare_uniswap_chain(node.url, funder, load_accounts=3)
        dep = chain.uniswap
        out = subprocess.run(
            [str(CAST_BIN), "call", dep.pair, "getReserves()(uint112,uint112,uint32)", "--rpc-url", node.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        reserves = [int(x.split()[0]) for x in out.stdout.split("\n")[:2]]
        assert all(r >= uniswap.LIQUIDITY - 10**19 for r in reserves), out.stdout
        acct = derive_accounts(DEFAULT_MNEMONIC, chain.account_base, 1)[0]
        with Rpc(node.url) as rpc:
            bal = rpc.call(
                "eth_call",
                [
                    {
                        "to": dep.token_b,
                        "data": uniswap.calldata("balanceOf(address)", ["address"], [acct.address]),
                    },
                    "latest",
                ],
            )
            assert int(bal, 16) == uniswap.TOKENS_PER_ACCOUNT
            with pytest.raises(RpcError, match="eth_noSuchMethod"):
                rpc.call("eth_noSuchMethod")


@pytest.mark.xdist_group("load")
def test_tiny_load_runs_account_for_every_tx(tmp_path) -> None:
    node, chain = start_l1("l2-like", load_accounts=6, worker_senders=1, log_dir=tmp_path)
    try:
        swap = run_load(
            chain.url,
            LoadConfig(
                "swap",
                instances=2,
                accounts_per_instance=3,
                txs_per_account=4,
                send_mode="single",
                loop="open",
                target_tps=40,
            ),
            chain.mnemonic,
            chain.uniswap,
        )
        acc = swap.metrics["accounting"]
        assert (acc["sent"], acc["included"], acc["failed"], acc["missing"]) == (24, 24, 0, 0)
        assert 80_000 < swap.metrics["gas_per_tx_mean"] < 100_000
        assert swap.metrics["latency_p50_s"] > 0
        xfer = run_load(
            chain.url,
            LoadConfig("transfer", instances=1, accounts_per_instance=6, txs_per_account=5),
            chain.mnemonic,
        )
        assert xfer.metrics["accounting"]["included"] == 30
        assert xfer.metrics["gas_per_tx_mean"] == 21_000
        assert {t.instance for t in swap.txs} == {0, 1}
    finally:
        node.stop()
