"""Run the rollup node by hand:  python -m harness.rollup --help

    python -m harness.rollup --data-dir /tmp/rollup            # starts its own L1 anvil (1 s blocks)
    python -m harness.rollup --data-dir /tmp/rollup --l1-url http://127.0.0.1:8545 \\
        --l1-key 0xac09...ff80            # deploys a Rollup contract unless --rollup-address is given

Without --l1-url the node starts an embedded L1 (anvil, 1 s blocks, default hardfork, on an OS-assigned
port, operator = anvil dev account 0) that lives as long as the node: such a data dir cannot be restarted
(the L1 holding its batches is gone); give --l1-url for restartable runs.

Prints one JSON line {"url": ..., "ws_url": ..., "rollup_address": ..., "l1_url": ...} when ready (and writes it to
--ready-file). SIGTERM/SIGINT stop the node and kill its anvil engines (also during start-up). The engines
are reached over IPC (unix sockets, mode 0600, in DATA_DIR/engines); no engine URL is printed or served.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from harness.rollup.config import BatchCriteria, NodeConfig
from harness.rollup.engine import EngineConfig

#: anvil's dev account 0 of the public test mnemonic: the operator on the embedded L1 (no value there)
EMBEDDED_L1_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def real_backends(cfg: NodeConfig):
    """The real L1 Rollup contract (deployed or attached) and the real Groth16 prover."""
    from eth_account import Account

    from harness.rollup.l1 import RollupL1
    from harness.rollup.zk.prover import Groth16Prover

    if not (cfg.l1_url and cfg.l1_key):
        raise SystemExit("--l1-url needs --l1-key (the L1 operator key that pays commit/prove/execute)")
    kw = {"zk_cache_dir": cfg.prover_cache_dir} if cfg.prover_cache_dir else {}

    def l1_factory(genesis_root: bytes):
        if cfg.rollup_address:
            return RollupL1.attach(cfg.l1_url, cfg.rollup_address, **kw)
        saved = cfg.data_dir / "rollup_address.json"
        if saved.is_file():
            return RollupL1.attach(cfg.l1_url, json.loads(saved.read_text())["address"], **kw)
        seq = Account.from_key(cfg.l1_key).address
        l1 = RollupL1.deploy(cfg.l1_url, cfg.l1_key, seq, genesis_root, **kw)
        saved.write_text(json.dumps({"address": l1.address}))
        return l1

    return l1_factory, (Groth16Prover(cfg.prover_cache_dir) if cfg.prover_cache_dir else Groth16Prover())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.rollup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, type=Path, help="WAL, SQLite store, batch blobs, logs")
    p.add_argument("--l1-url", help="L1 JSON-RPC URL (default: start an embedded L1 anvil with 1 s blocks that "
                                    "lives as long as the node; such a data dir cannot be restarted)")
    p.add_argument("--l1-key", help="L1 operator private key (pays commit/prove/execute); required with "
                                    "--l1-url (embedded L1: anvil dev account 0)")
    p.add_argument("--rollup-address", help="attach to this Rollup contract instead of deploying one")
    p.add_argument("--port", type=int, default=0, help="RPC port on 127.0.0.1 (default: OS-assigned)")
    p.add_argument("--chain-id", type=int, default=270, help="L2 chain id (default 270, ZKsync's local id)")
    p.add_argument("--l2-gas-limit", type=int, default=100_000_000, help="L2 block gas limit (default 100 M)")
    p.add_argument("--l2-accounts", type=int, default=20, help="prefunded dev accounts on L2")
    p.add_argument("--block-time", type=int, default=1, help="L2 block interval, whole seconds")
    p.add_argument("--max-blocks", type=int, default=10, help="seal a batch after this many L2 blocks")
    p.add_argument("--max-txs", type=int, default=1000, help="seal a batch once it holds this many txs (whole blocks: may overshoot by one block)")
    p.add_argument("--max-bytes", type=int, default=120_000, help="seal a batch once its raw tx bytes reach this (whole blocks)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="seal a non-empty batch this many seconds after its first tx was seen")
    p.add_argument("--compression", choices=["zlib", "lzma", "none"], default="zlib", help="batch data compression before the L1 commit")
    p.add_argument("--da", choices=["auto", "calldata", "blobs"], default="auto",
                   help="where batch data goes on L1: auto (default: EIP-4844 blobs where the L1 supports them, "
                        "else calldata; rollup_status says which and why), calldata, or blobs (type-3 txs; "
                        "the L1 stores keccak of the blobs' versioned hashes as the batch's dataHash)")
    p.add_argument("--tree-depth", type=int, default=64, help="sparse Merkle tree depth (a key collision is an error, never merged)")
    p.add_argument("--prover-cache", type=Path, help="Groth16 setup cache (zkey etc.; also the verifier "
                                                     "compiled into the Rollup ABI on attach)")
    p.add_argument("--l1-retry-max-s", type=float, default=30.0,
                   help="cap of the exponential backoff (seconds) while L1 is unreachable (default 30)")
    p.add_argument("--l1-confirmations", type=int, default=2,
                   help="L1 blocks built on a commit/prove/execute receipt (its block re-checked to be still "
                        "canonical) before the step counts as done (default 2: covers the 1-block reorgs a PoS "
                        "L1 has, for 2 L1 blocks of latency per step; 0: done at the receipt)")
    p.add_argument("--trace-at-seal", action="store_true",
                   help="trace a batch's state diff when the batch is sealed, instead of each L2 block as it "
                        "is recorded (default; ZKsync's state keeper has a block's storage logs when it seals "
                        "the block, so its batch sealing never traces)")
    p.add_argument("--engine-transport", choices=["ipc", "http"], default="ipc",
                   help="how the node reaches its anvil engines: ipc (default; unix sockets, mode 0600, in "
                        "DATA_DIR/engines) or http (a fallback only where IPC cannot work: their OS-assigned "
                        "127.0.0.1 ports are then reachable by every local process)")
    p.add_argument("--ready-file", type=Path, help="write the ready JSON line here too")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    return p.parse_args(argv)


#: the interpreter's thread switch interval in the node process (CPython's default: 5 ms). The pipeline's
#: stages (sealer, Merkle tree, re-execution, L1 client) are CPU-bound Python threads; while one runs, an RPC
#: request that needs the interpreter lock waits up to a whole interval for it, at every step of its path.
GIL_SWITCH_INTERVAL_S = 0.0005


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    logging.basicConfig(level=a.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    starting = [True]
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:  # SIGTERM would otherwise skip every finally block
        stop.set()
        if starting[0]:  # interrupt start-up now (Node.start stops what it started), not after it
            raise KeyboardInterrupt(f"signal {signum} during start-up")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    embedded_l1 = None
    node = None
    try:
        l1_url, l1_key = a.l1_url, a.l1_key
        if l1_url is None:
            if (a.data_dir / "rollup_address.json").is_file():
                raise SystemExit(f"{a.data_dir} was used with an L1 that is gone (an embedded L1 lives only as "
                                 "long as its node): use a fresh --data-dir, or give --l1-url")
            from harness.chain.anvil import Anvil

            embedded_l1 = Anvil(block_time=1, log_dir=a.data_dir / "logs").start()
            l1_url, l1_key = embedded_l1.url, l1_key or EMBEDDED_L1_KEY
        from harness.rollup.da_choice import choose_data_availability

        da, da_reason = choose_data_availability(a.da, l1_url, a.max_bytes)
        logging.getLogger("rollup").info("data availability: %s (%s)", da, da_reason)
        cfg = NodeConfig(
            data_dir=a.data_dir, l1_url=l1_url, l1_key=l1_key, rollup_address=a.rollup_address,
            engine=EngineConfig(chain_id=a.chain_id, gas_limit=a.l2_gas_limit, accounts=a.l2_accounts,
                                transport=a.engine_transport),
            block_time_s=a.block_time,
            criteria=BatchCriteria(a.max_blocks, a.max_txs, a.max_bytes, a.max_seconds),
            compression=a.compression, data_availability=da, data_availability_reason=da_reason, tree_depth=a.tree_depth,
            prover_cache_dir=a.prover_cache, port=a.port, l1_retry_max_s=a.l1_retry_max_s,
            l1_confirmations=a.l1_confirmations,
            trace_blocks_ahead=not a.trace_at_seal,
        )
        from harness.rollup.node import Node

        l1_factory, prover = real_backends(cfg)
        node = Node(cfg, l1_factory, prover, extra_pgids=[embedded_l1.pgid] if embedded_l1 else [])
        node.start()
        starting[0] = False
        if stop.is_set():
            return 0
        info = {"url": node.url, "ws_url": node.ws_url, "pid": os.getpid(),
                "rollup_address": getattr(node.l1, "address", None),
                "l1_url": l1_url, "l1_embedded": embedded_l1 is not None,
                "l2_engine_pgid": node.engine.pgid, "data_dir": str(cfg.data_dir)}
        line = json.dumps(info)
        if a.ready_file:
            tmp = a.ready_file.with_suffix(".tmp")
            tmp.write_text(line)
            tmp.replace(a.ready_file)
        print(line, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt as e:
        logging.getLogger("rollup.node").warning("stopping: %s", e)
        return 0 if not starting[0] else 128 + signal.SIGTERM
    finally:
        starting[0] = False
        if node is not None:
            node.stop()
        if embedded_l1 is not None:
            embedded_l1.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
