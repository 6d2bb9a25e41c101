"""``python -m harness.chain``: run a load scenario against a chain and write the JSON result.

By default it starts its own anvil for ``--chain-profile`` (127.0.0.1, OS port, own process
group, killed on exit), deploys Uniswap V2, funds the load accounts and applies the profile.
With ``--rpc-url`` it targets any JSON-RPC chain instead; then a funded private key must be
given (``--funder-key`` or env ``CHAIN_FUNDER_KEY``): it pays for deployment and funding, and the
result's profile is "external" with the observed block gas limit and block time.

Prints the config, the profile and the metrics as JSON on stdout (progress on stderr); exit code 0
when every tx is accounted for and every run block was observed in time, 1 otherwise, 2 for bad
arguments. The anvil binary: env ANVIL_BINARY, else the npm package's (ANVIL_FROM_PATH=1: PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from harness.chain.accounts import DEFAULT_MNEMONIC, LOAD_ACCOUNT_BASE, Account
from harness.chain.loadgen import LoadConfig, run_load, stderr_progress
from harness.chain.metrics import MissingTransactionsError
from harness.chain.profiles import PROFILES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.chain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--chain-profile",
        choices=sorted(PROFILES),
        default="mainnet-scaled",
        help="block time / gas limit of the embedded anvil (ignored with --rpc-url). "
        + "; ".join(f"{k}: {v.description}" for k, v in PROFILES.items()),
    )
    p.add_argument(
        "--rpc-url",
        default=os.environ.get("CHAIN_RPC_URL"),
        help="target an existing JSON-RPC HTTP endpoint instead of an embedded anvil (env CHAIN_RPC_URL)",
    )
    p.add_argument(
        "--ws-url",
        default=os.environ.get("CHAIN_WS_URL"),
        help="WebSocket JSON-RPC URL of the target, where the inclusion observer subscribes to newHeads "
        "(env CHAIN_WS_URL; default: the HTTP URL's host and port over ws://, as anvil and most nodes serve)",
    )
    p.add_argument(
        "--observe",
        choices=["auto", "newHeads", "poll"],
        default="auto",
        help="how inclusion is observed: auto (newHeads where the target offers it, else polling every 20 ms; "
        "the fallback and its reason are in metrics.observation), newHeads (required), poll",
    )
    p.add_argument(
        "--funder-key",
        default=os.environ.get("CHAIN_FUNDER_KEY"),
        help="hex private key with ETH on --rpc-url; deploys and funds (env CHAIN_FUNDER_KEY). "
        "Needs ~10 ETH per load account plus deployment gas",
    )
    p.add_argument(
        "--mnemonic",
        default=os.environ.get("CHAIN_MNEMONIC", DEFAULT_MNEMONIC),
        help="BIP-39 mnemonic of the load accounts (env CHAIN_MNEMONIC; default: anvil's test mnemonic)",
    )
    p.add_argument(
        "--workload",
        choices=["swap", "transfer"],
        default="swap",
        help="swap: Uniswap V2 swapExactTokensForTokens, directions alternating per account; "
        "transfer: 1 wei ETH transfers",
    )
    p.add_argument("--instances", type=int, default=1, help="generator instances (separate processes)")
    p.add_argument("--accounts", type=int, default=50, help="accounts per instance (paper: 50)")
    p.add_argument("--txs-per-account", type=int, default=20, help="transactions per account (paper: 20)")
    p.add_argument(
        "--send-mode",
        choices=["batch", "single"],
        default="batch",
        help="batch: JSON-RPC batches of --batch-size raw txs; single: one HTTP request per tx",
    )
    p.add_argument("--batch-size", type=int, default=100, help="txs per JSON-RPC batch (send-mode batch)")
    p.add_argument(
        "--transport",
        choices=["http", "ws"],
        default="http",
        help="how each instance sends: http (one keep-alive connection) or ws (one WebSocket on the same "
        "host and port, as the paper's generators did); the per-request reply times of either are in "
        "metrics.request_latency",
    )
    p.add_argument(
        "--loop",
        choices=["closed", "open"],
        default="closed",
        help="closed: send as fast as the node answers; open: at --target-tps",
    )
    p.add_argument(
        "--target-tps", type=float, default=None, help="open loop: total send rate, txs/s over all instances"
    )
    p.add_argument(
        "--no-alternate", action="store_true", help="swap always A->B (price drifts) instead of alternating"
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=None,
        help="seconds to wait for every accepted tx to be included after sending (default: derived: "
        "2 x the workload's gas (by tx gas limit) / the chain's gas per second + 3 blocks + 60 s; "
        "the profile's rates, or the target's last blocks with --rpc-url)",
    )
    p.add_argument(
        "--max-inclusion-uncertainty",
        type=float,
        default=1.0,
        help="fail if a run block was seen more than this many seconds after the observer's previous "
        "poll (the resolution of the inclusion times; default 1.0)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports/results/chain/cli-run.json"),
        help="where the JSON result (config, chain, metrics, every block and tx) is written",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr (also when env CI is set)")
    return p


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = stderr_progress(args.quiet)
    cfg = LoadConfig(
        workload=args.workload,
        instances=args.instances,
        accounts_per_instance=args.accounts,
        txs_per_account=args.txs_per_account,
        send_mode=args.send_mode,
        batch_size=args.batch_size,
        transport=args.transport,
        loop=args.loop,
        target_tps=args.target_tps,
        alternate=not args.no_alternate,
        drain_timeout_s=args.drain_timeout,
        max_inclusion_uncertainty_s=args.max_inclusion_uncertainty,
        observe=args.observe,
    )
    try:
        cfg.validate()
        if args.ws_url and not args.ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"--ws-url must be ws(s)://..., got {args.ws_url!r}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # SIGTERM (e.g. `timeout`) would skip finally blocks: turn it into an exception so anvil is killed
    signal.signal(signal.SIGTERM, _raise_interrupt)
    n_accounts = cfg.instances * cfg.accounts_per_instance
    node = None
    try:
        if args.rpc_url:
            if not args.funder_key:
                print(
                    "error: --rpc-url needs a funded key: --funder-key or env CHAIN_FUNDER_KEY",
                    file=sys.stderr,
                )
                return 2
            from harness.chain.l1 import prepare_uniswap_chain

            progress(f"preparing {args.rpc_url}: Uniswap V2 + {n_accounts} accounts")
            chain = prepare_uniswap_chain(
                args.rpc_url, Account.from_key(args.funder_key), n_accounts, args.mnemonic, LOAD_ACCOUNT_BASE
            )
        else:
            from harness.chain.l1 import start_l1

            progress(f"starting anvil ({args.chain_profile}) and preparing {n_accounts} accounts")
            node, chain = start_l1(args.chain_profile, load_accounts=n_accounts, mnemonic=args.mnemonic)
        progress(f"setup took {chain.setup_s:.1f} s")
        info = {"profile": chain.profile} if not args.rpc_url else {}  # --rpc-url: 'external' + observed
        if chain.anvil:
            info["anvil"] = chain.anvil
        result = run_load(
            chain.url,
            cfg,
            chain.mnemonic,
            chain.uniswap if cfg.workload == "swap" else None,
            chain_info=info,
            progress=progress,
            require_no_missing=False,
            strict_observation=False,  # recorded in the JSON; the exit code says what failed
            ws_url=args.ws_url,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result.as_dict(), default=str))
        progress(f"wrote {args.out}")
        print(
            json.dumps(
                {"config": asdict(cfg), "profile": result.chain["profile"], "metrics": result.metrics},
                default=str,
                indent=2,
            )
        )
        from harness.chain.metrics import accounting, check_no_missing

        try:
            check_no_missing(accounting(result.txs))
        except MissingTransactionsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        m = result.metrics
        u, bound = m.get("inclusion_uncertainty_max_s"), cfg.max_inclusion_uncertainty_s
        if m["observer_failure"] or m["blocks_unseen_by_observer"] or (u is not None and bound and u > bound):
            print(
                f"error: inclusion observation incomplete: observer failure {m['observer_failure']!r}, "
                f"{m['blocks_unseen_by_observer']} run block(s) unseen, worst resolution {u} s (bound {bound} s)",
                file=sys.stderr,
            )
            return 1
        return 0
    finally:
        if node is not None:
            node.stop()
