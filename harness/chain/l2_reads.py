"""L1/L2 reads behind paper B's settlement claims, beside the finality tracker; no pytest.

Only what a real ZKsync node serves is read (zksync-era ``core/lib/web3_decl/src/namespaces/zks.rs``):
``zks_getBlockDetails`` (a block's ``l1BatchNumber``), ``zks_getL1BatchDetails`` (a batch's
commit/prove/execute L1 tx hashes), ``zks_getL1BatchBlockRange`` (a batch's ``[first, last]`` L2 blocks,
hex). What the embedded node adds (``<step>GasUsed``, ``rollup_batchTimings``, ``rollup_status``) is used
when present and never required. The L1 gas of each step is the L1 receipt's (or the node's), and a batch
is charged its share when one L1 tx carries several batches (ZKsync aggregates consecutive batches into
one commit/prove/execute tx; detected by equal tx hashes over neighbouring batches).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.chain.rpc import Rpc, RpcError, to_int

L1_STEPS = ("commit", "prove", "execute")
#: how far past the batches in question neighbours are read to count the batches one L1 tx carries
MAX_AGGREGATION_PROBE = 64


def batch_block_range(rpc: Rpc, batch: int) -> tuple[int, int] | None:
    """``zks_getL1BatchBlockRange(batch)`` -> (first, last) L2 block, None when the node has no such batch."""
    r = rpc.call("zks_getL1BatchBlockRange", [batch])
    if r is None:
        return None
    first, last = (to_int(x) for x in r)
    return first, last  # type: ignore[return-value]


class _Details:
    """zks_getL1BatchDetails memo for one read (neighbours are read at most once)."""

    def __init__(self, rpc: Rpc):
        self.rpc = rpc
        self.memo: dict[int, dict[str, Any] | None] = {}

    def get(self, n: int) -> dict[str, Any] | None:
        if n < 0:
            return None
        if n not in self.memo:
            d = self.rpc.call("zks_getL1BatchDetails", [n])
            self.memo[n] = dict(d) if d else None
        return self.memo[n]


def batches_per_l1_tx(details: _Details, n: int, step: str) -> int:
    """How many batches the L1 tx of ``step`` for batch ``n`` carries: 1 + the contiguous neighbours (up to
    :data:`MAX_AGGREGATION_PROBE` each side) whose ``<step>TxHash`` is the same. 1 when the hash is null."""
    det = details.get(n)
    h = (det or {}).get(f"{step}TxHash")
    if not h:
        return 1
    count = 1
    for direction in (-1, 1):
        m = n + direction
        while abs(m - n) <= MAX_AGGREGATION_PROBE:
            d = details.get(m)
            if not d or (d.get(f"{step}TxHash") or "").lower() != h.lower():
                break
            count += 1
            m += direction
    return count


def batches_for_blocks(l2_url: str, blocks: Iterable[int], l1_url: str | None = None) -> list[dict[str, Any]]:
    """The L1 batches holding ``blocks``: ``zks_getL1BatchDetails`` of every batch any of them is in, plus

    * ``l2_block_range`` [first, last] from ``zks_getL1BatchBlockRange``;
    * ``timings_s`` / ``tree_breakdown_s`` from ``rollup_batchTimings`` when the node serves it (else None);
    * ``l1_tx_gas`` {commit, prove, execute}: the whole L1 tx's execution gas, from the details'
      ``<step>GasUsed`` or, failing that, the receipt of ``<step>TxHash`` on ``l1_url``; ``l1_tx_blob_gas``
      likewise (``blobGasUsed``, 0 for calldata);
    * ``l1_tx_batches`` {step: batches that L1 tx carries} and ``l1_gas`` / ``l1_blob_gas``: this batch's
      share (tx gas / batches it carries).

    Raises ValueError for a block the node does not know or whose batch is not sealed yet (ZKsync gives an
    unbatched block the next batch number, which has no details yet)."""
    nums = sorted(set(blocks))
    out: list[dict[str, Any]] = []
    with Rpc(l2_url) as rpc:
        batch_of: dict[int, int] = {}
        for i in range(0, len(nums), 200):
            chunk = nums[i : i + 200]
            for n, d in zip(chunk, rpc.batch([("zks_getBlockDetails", [n]) for n in chunk]), strict=False):
                if d is None or d.get("l1BatchNumber") is None:
                    raise ValueError(f"L2 block {n} is unknown to {l2_url}")
                batch_of[n] = to_int(d["l1BatchNumber"])  # type: ignore[assignment]
        details = _Details(rpc)
        l1 = Rpc(l1_url) if l1_url else None
        try:
            for b in sorted(set(batch_of.values())):
                base = details.get(b)
                rng = batch_block_range(rpc, b)
                if base is None or rng is None:
                    raise ValueError(f"L1 batch {b} (holding blocks {[n for n, x in batch_of.items() if x == b][:5]}) "
                                     f"is not sealed yet on {l2_url}")
                det = dict(base)
                det["l2_block_range"] = list(rng)
                try:
                    bt = rpc.call("rollup_batchTimings", [b]) or {}
                    det["timings_s"], det["tree_breakdown_s"] = bt.get("timings_s"), bt.get("tree_breakdown_s")
                    det["block_trace"] = bt.get("block_trace")
                except RpcError:
                    det["timings_s"] = det["tree_breakdown_s"] = det["block_trace"] = None
                gas = {s: det.get(f"{s}GasUsed") for s in L1_STEPS}
                blob = {s: det.get(f"{s}BlobGasUsed") for s in L1_STEPS}
                for s in L1_STEPS:
                    h = det.get(f"{s}TxHash")
                    if (gas[s] is None or blob[s] is None) and h and l1 is not None:
                        rc = l1.call("eth_getTransactionReceipt", [h])
                        if rc:
                            gas[s] = to_int(rc["gasUsed"]) if gas[s] is None else gas[s]
                            blob[s] = to_int(rc.get("blobGasUsed") or "0x0") if blob[s] is None else blob[s]
                carried = {s: batches_per_l1_tx(details, b, s) for s in L1_STEPS}
                det["l1_tx_gas"], det["l1_tx_blob_gas"], det["l1_tx_batches"] = gas, blob, carried
                det["l1_gas"] = {s: (gas[s] / carried[s] if gas[s] is not None else None) for s in L1_STEPS}
                det["l1_blob_gas"] = {s: (blob[s] / carried[s] if blob[s] is not None else None) for s in L1_STEPS}
                det["l2_blocks"] = [n for n, bb in batch_of.items() if bb == b]
                out.append(det)
        finally:
            if l1 is not None:
                l1.close()
    return out


def node_batching_config(l2_url: str) -> dict[str, Any] | None:
    """The L2 node's batch-sealing configuration when it reports one (the embedded node's
    ``rollup_status``: max blocks / txs / bytes / seconds per batch, L2 block time, DA mode); None for a
    node without that method. B5's hard/soft ratio and B11's txs per batch are set by it."""
    try:
        with Rpc(l2_url) as rpc:
            st = rpc.call("rollup_status")
    except RpcError:
        return None
    if not isinstance(st, dict) or "sealingCriteria" not in st:
        return None
    return {**{f"batch_{k}": v for k, v in st["sealingCriteria"].items()},
            "l2_block_time_s": st.get("l2BlockTime_s"), "data_availability": st.get("dataAvailability")}


def observed_gas_per_second(url: str, blocks: int = 10) -> float:
    """An external chain's gas per second: latest block gas limit / mean header-timestamp interval over the
    last ``blocks`` blocks (gas units / s). Raises ValueError if the chain has too few blocks."""
    with Rpc(url) as rpc:
        head = to_int(rpc.call("eth_blockNumber"))
        if head < blocks:
            raise ValueError(f"{url}: only {head} blocks, need {blocks} to estimate the block time")
        first = rpc.call("eth_getBlockByNumber", [hex(head - blocks), False])
        last = rpc.call("eth_getBlockByNumber", [hex(head), False])
    dt = (to_int(last["timestamp"]) - to_int(first["timestamp"])) / blocks
    if dt <= 0:
        raise ValueError(f"{url}: block timestamps do not advance")
    return to_int(last["gasLimit"]) / dt
