"""Configuration of the embedded rollup node (all times in seconds, sizes in bytes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.rollup.engine import EngineConfig


@dataclass
class BatchCriteria:
    """A batch is sealed as soon as ONE criterion is met (and it holds at least one tx)."""

    max_blocks: int = 10
    max_txs: int = 1_000
    max_bytes: int = 120_000  # raw tx bytes, before compression
    max_seconds: float = 10.0  # window from when the first unsealed block holding a tx was seen (by seen_at)

    def __post_init__(self) -> None:
        if self.max_blocks < 1 or self.max_txs < 1 or self.max_bytes < 1 or self.max_seconds <= 0:
            raise ValueError(f"batch criteria must be positive: {self}")


@dataclass
class NodeConfig:
    data_dir: Path
    l1_url: str | None = None
    l1_key: str | None = None  # sequencer/operator key on L1 (pays commit/prove/execute)
    rollup_address: str | None = None  # None: deploy a fresh Rollup contract
    engine: EngineConfig = field(default_factory=EngineConfig)
    block_time_s: int = 1  # L2 interval mining (anvil accepts whole seconds here)
    criteria: BatchCriteria = field(default_factory=BatchCriteria)
    compression: str = "zlib"
    data_availability: str = "calldata"  # "calldata" or "blobs" (EIP-4844 blob transactions); the CLI's
    # default, --da auto, picks blobs where the L1 supports them (da_choice.py)
    data_availability_reason: str | None = None  # why (reported in rollup_status)
    tree_depth: int = 64
    prover_cache_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0: the OS picks
    l1_retry_max_s: float = 30.0  # backoff cap while L1 is unreachable
    #: L1 blocks that must be built on a commit/prove/execute receipt's block (still canonical, hash re-checked)
    #: before the step counts as done; 0: done at the receipt (no confirmation wait). Default 2: see __main__'s help.
    l1_confirmations: int = 2
    l1_poll_s: float = 0.25  # how often the confirmer reads L1's head (every 4th time: finalized block, reorgs)
    # trace each L2 block's state diff as it is recorded (ZKsync's state keeper has a block's storage logs
    # when it seals the block); False: trace the whole batch at seal time (diff_tracer.py says why not)
    trace_blocks_ahead: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.data_availability not in ("calldata", "blobs"):
            raise ValueError(f"data_availability must be 'calldata' or 'blobs', got {self.data_availability!r}")
        if self.data_availability == "blobs":
            from harness.rollup.blobs import BLOB_PAYLOAD_BYTES, MAX_BLOBS

            capacity = MAX_BLOBS * BLOB_PAYLOAD_BYTES - 4
            if self.criteria.max_bytes > capacity // 2:
                raise ValueError(
                    f"with blobs, max_bytes must be <= {capacity // 2} (half of the {capacity} bytes that "
                    f"{MAX_BLOBS} blobs carry: batches are whole blocks and can overshoot), got "
                    f"{self.criteria.max_bytes}"
                )
        if not isinstance(self.l1_confirmations, int) or self.l1_confirmations < 0:
            raise ValueError(f"l1_confirmations must be an int >= 0, got {self.l1_confirmations!r}")
        if self.block_time_s < 1:
            raise ValueError("block_time_s must be a whole number >= 1 (anvil interval mining)")
