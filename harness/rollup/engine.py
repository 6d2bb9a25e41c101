"""The L2 execution engine (an anvil child process the node owns); reached with :class:`harness.chain.rpc.Rpc`.

The same class serves the sequencer's engine (interval mining, ~1 s blocks =
soft finality) and the prover's separate re-execution engine (no mining; it
replays published batches block by block with the original timestamps).
Both run ``--order fifo`` so that a block replayed in its original order
mines the same transactions in the same order.

How the node reaches an engine: over anvil's IPC socket (``anvil --ipc``), ``<dir>/<name>.ipc`` in a
directory of mode 0700 (the node's: ``<data dir>/engines/``), the socket itself 0600, so only this
user's processes can connect (see :mod:`harness.chain.ipc` for the framing). No engine URL is
published anywhere (``rollup_status``, the ready line, the node's log). anvil cannot switch off its HTTP
listener (see :mod:`harness.chain.anvil`): it stays bound to an OS-assigned 127.0.0.1 port that the
node never reads or uses; a local process that scans the loopback ports can still find it and send
transactions around the sequencer. That residual exposure is stated, not hidden.

HTTP (``EngineConfig(transport="http")``, ``--engine-transport http``) is a fallback for where IPC
genuinely cannot work (an ``ANVIL_BINARY`` without ``--ipc``, a platform without Unix sockets). It is
never picked silently: an IPC start that fails raises, and the node logs a warning and reports
``engineTransport: "http"`` in ``rollup_status`` when it runs over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.chain.anvil import Anvil
from harness.chain.rpc import Rpc, RpcError


@dataclass
class EngineConfig:
    """How an L2 engine anvil is started (both engines must agree on all of it)."""

    chain_id: int = 270
    gas_limit: int = 100_000_000
    accounts: int = 20
    balance_eth: int = 1_000_000
    mnemonic: str = "test test test test test test test test test test test junk"
    genesis_timestamp: int | None = None
    transport: str = "ipc"  # "ipc", or "http" only where IPC cannot work (module docstring)

    def __post_init__(self) -> None:
        if self.transport not in ("ipc", "http"):
            raise ValueError(f"engine transport must be 'ipc' or 'http', got {self.transport!r}")


class Engine:
    """An anvil started with --no-mining (interval mining is switched on by the caller).

    Reached over IPC at ``ipc_dir/<name>.ipc`` (``ipc_dir`` default: ``engines/`` beside ``log_dir``).
    """

    def __init__(self, cfg: EngineConfig, log_dir: Path, name: str, ipc_dir: Path | None = None) -> None:
        self.cfg = cfg
        extra = ["--no-mining", "--order", "fifo"]
        if cfg.genesis_timestamp is not None:
            extra += ["--timestamp", str(cfg.genesis_timestamp)]
        self.ipc_path = (Path(ipc_dir) if ipc_dir else Path(log_dir).parent / "engines") / f"{name}.ipc"
        self.anvil = Anvil(chain_id=cfg.chain_id, gas_limit=cfg.gas_limit, accounts=cfg.accounts,
                           balance_eth=cfg.balance_eth, mnemonic=cfg.mnemonic, extra_args=extra,
                           log_dir=log_dir, ipc_path=self.ipc_path if cfg.transport == "ipc" else None)
        self.name = name
        self.rpc: Rpc | None = None

    def start(self) -> Engine:
        self.anvil.start()
        self.rpc = self.client()
        return self

    @property
    def transport(self) -> str:
        return self.cfg.transport

    @property
    def endpoint(self) -> str | Path:
        """The engine's IPC socket path (transport ipc) or HTTP URL."""
        return Path(self.ipc_path) if self.cfg.transport == "ipc" else self.anvil.url

    def client(self, timeout_s: float = 30.0) -> Rpc:
        """A new client of this engine (its own connection per thread)."""
        if self.cfg.transport == "ipc":
            return Rpc(Path(self.ipc_path), timeout_s)
        return Rpc(self.anvil.url, timeout_s)

    @property
    def pgid(self) -> int | None:
        return self.anvil.pgid

    def stop(self) -> None:
        self.anvil.stop()

    def genesis(self) -> dict:
        return self.rpc.call("eth_getBlockByNumber", ["0x0", False])

    def start_interval_mining(self, seconds: int) -> None:
        self.rpc.call("evm_setIntervalMining", [int(seconds)])

    def replay_block(self, number: int, timestamp: int, raws: list[bytes], expect_hashes: list[str]) -> dict:
        """Mine block ``number`` at ``timestamp`` holding exactly ``raws`` in order; returns the block.

        Raises ``ReplayMismatch`` if the engine is at the wrong height or mined anything else.
        """
        head = int(self.rpc.call("eth_blockNumber"), 16)
        if head != number - 1:
            raise ReplayMismatch(f"{self.name}: at block {head}, cannot replay block {number}")
        self.rpc.call("evm_setNextBlockTimestamp", [timestamp])
        # one request per tx, in order: anvil serves a JSON-RPC batch concurrently, so a batch would not
        # preserve the pool's FIFO order across senders
        for r in raws:
            try:
                self.rpc.call("eth_sendRawTransaction", ["0x" + r.hex()])
            except RpcError as e:
                raise ReplayMismatch(f"{self.name}: block {number}: engine refused a tx: {e}") from None
        self.rpc.call("evm_mine", [])
        blk = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        if blk is None or [h.lower() for h in blk["transactions"]] != [h.lower() for h in expect_hashes]:
            got = None if blk is None else len(blk["transactions"])
            raise ReplayMismatch(f"{self.name}: block {number} mined {got} txs, expected {len(expect_hashes)}"
                                 " in the same order")
        if int(blk["timestamp"], 16) != timestamp:
            raise ReplayMismatch(f"{self.name}: block {number} timestamp {blk['timestamp']} != {timestamp}")
        return blk


class ReplayMismatch(RuntimeError):
    """Re-execution did not reproduce the published block/state."""
