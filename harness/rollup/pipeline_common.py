"""What the pipeline's stages share: stage names, the L1 and prover interfaces, the stage errors, and the
conversion of L1 results into batch-record fields (split from batcher.py, which runs the stages)."""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any, Protocol

log = logging.getLogger("rollup.batcher")

STAGES = ("seal", "state_diff", "tree", "compress", "persist", "commit", "reexecute", "prove", "verify",
          "execute")
SEALING_STAGES = ("seal", "state_diff", "tree", "compress", "persist")
L1_STEPS = ("commit", "prove", "execute")
#: refusal texts older nodes persisted for what was an L1 state read (lagging or reorged), not a mismatch
TRANSIENT_REFUSALS = ("is not committed on L1",)
#: re-execution may run this many batches ahead of proving
PROOF_QUEUE = 2


class L1Like(Protocol):
    """The subset of harness.rollup.l1.RollupL1 the node uses."""

    address: str
    chain_id: int  # L1's chain id: with ``address`` it names the deployment a proof is bound to

    def commit_batch(self, sender_key: str, batch_number: int, prev_root: bytes, new_root: bytes,
                     data: bytes) -> Any: ...
    def commit_batch_blobs(self, sender_key: str, batch_number: int, prev_root: bytes, new_root: bytes,
                           data: bytes) -> Any: ...
    def prove_batch(self, sender_key: str, batch_number: int, proof: Any) -> Any: ...
    def execute_batch(self, sender_key: str, batch_number: int) -> Any: ...
    def totals(self) -> dict[str, int]: ...
    def batch(self, n: int) -> dict: ...
    def step_tx(self, n: int, step: str) -> Any: ...
    def published_batch(self, n: int, local_data: bytes | None = None) -> Any: ...
    def head(self) -> int: ...
    def finalized_block(self) -> int | None: ...
    def block_hashes(self, numbers: list[int]) -> dict[int, str | None]: ...


class ProverLike(Protocol):
    def prove(self, batch_number: int, prev_root: bytes, new_root: bytes, data_hash: bytes, *,
              chain_id: int, rollup_address: str) -> Any: ...


class ProofRefused(RuntimeError):
    """Re-execution of a published batch did not reproduce its state diff or root (or its data on L1
    could not be read back / does not match the hash L1 stored)."""


class L1Divergence(RuntimeError):
    """L1 holds a batch whose roots differ from this node's record of it: the node cannot continue."""


class StageAbort(Exception):
    """What a stage was doing no longer applies (an L1 reorg undid a step, a lower batch must be sent
    again): the stage picks its next batch afresh (the prover starts over)."""


def _jsonable(x: Any) -> Any:
    if isinstance(x, (bytes, bytearray)):
        return "0x" + bytes(x).hex()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "hex") and not isinstance(x, (int, float, str)):
        h = x.hex()
        return h if h.startswith("0x") else "0x" + h
    return x


_L1_FIELDS = ("tx_hash", "block_number", "block_hash", "block_timestamp", "gas_used", "blob_gas_used",
              "gas_limit", "calldata_bytes", "status", "seconds")


def l1_result(res: Any) -> dict:
    """An L1TxResult as a JSON-able dict, plus ``at``: the local unix time the receipt came back
    (``at_source: "local_receipt"``). Gas in gas units; ``blob_gas_used`` is EIP-4844 blob gas (0 for
    calldata), kept apart from execution gas (``gas_used``)."""
    out = {k: _jsonable(getattr(res, k, None)) for k in _L1_FIELDS}
    out["blob_gas_used"] = out["blob_gas_used"] or 0
    out["at"] = time.time()
    out["at_source"] = "local_receipt"
    out["recovered"] = False
    return out


def recovered_l1_result(res: Any) -> dict:
    """A step rebuilt from L1 after a restart (RollupL1.step_tx): real tx hash, gas, blob gas and L1 block;
    ``at`` is the L1 block's timestamp (whole seconds; the local receipt time was lost with the crash)."""
    out = {k: _jsonable(getattr(res, k, None)) for k in _L1_FIELDS}
    out["blob_gas_used"] = out["blob_gas_used"] or 0
    out["at"] = float(res.block_timestamp)
    out["at_source"] = "l1_block_timestamp"
    out["recovered"] = True
    return out


def stage_summary(recs: list[dict]) -> dict[str, dict[str, float]]:
    """Per stage: n, mean/median/p90/max in seconds over the given batch records."""
    out = {}
    for st in STAGES:
        xs = sorted(r["timings"][st] for r in recs if st in r.get("timings", {}))
        if xs:
            out[st] = {"n": len(xs), "mean_s": statistics.fmean(xs), "median_s": statistics.median(xs),
                       "p90_s": xs[min(len(xs) - 1, int(0.9 * len(xs)))], "max_s": xs[-1]}
    return out
