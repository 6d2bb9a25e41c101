"""ZKsync-compatible finality views (``zks_getBlockDetails``, ``zks_getL1BatchDetails``).

Field names and the status vocabulary follow ZKsync Era's JSON-RPC API so
that one finality tracker works against this node and a real ZKsync node:
``status`` is ``"sealed"`` until the batch is executed on L1, then
``"verified"``; ``committedAt``/``provenAt``/``executedAt`` are ISO-8601 UTC
strings (null until that L1 step happened). Extra fields ending in ``Unix``
carry the same instants as float unix seconds for sub-second analysis:
they are the local wall-clock times at which the node got the L1 receipt.
``softFinalityAtUnix`` is when the node first saw the L2 block.

``zks_getBlockDetails`` follows zksync-era's ``api::BlockDetails`` (core/lib/types/src/api/mod.rs) as
built by ``From<StorageBlockDetails>`` (core/lib/dal/src/models/storage_block.rs, commit
0169b1e56bd8b71538676a6446807ac49fe00a0b): ``l1BatchNumber`` is never null (a block not yet in a batch
gets the next batch number, ``MAX(l1_batches.number) + 1`` in the DAL's query), ``operatorAddress`` is
the batch's fee account (here: the sequencer's L1 address), block 0 is answered with status
``"verified"`` (genesis batch 0), and a block's status is ``"verified"`` once its batch is executed.
"""

from __future__ import annotations

import datetime as _dt


def iso(t: float | None) -> str | None:
    """Unix seconds -> ISO-8601 UTC with microseconds and a trailing Z (ZKsync's format)."""
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat().replace("+00:00", "Z")


def _step(rec: dict | None, key: str) -> tuple[str | None, float | None, dict]:
    step = (rec or {}).get(key) or {}
    return step.get("tx_hash"), step.get("at"), step


def l1_fields(rec: dict | None) -> dict:
    out: dict = {}
    for key, name in (("commit", "commit"), ("prove", "prove"), ("execute", "execute")):
        tx, at, step = _step(rec, key)
        past = {"commit": "committed", "prove": "proven", "execute": "executed"}[key]
        out[f"{name}TxHash"] = tx
        out[f"{past}At"] = iso(at)
        out[f"{past}AtUnix"] = at
        out[f"{name}L1BlockNumber"] = step.get("block_number")
        out[f"{name}L1BlockTimestamp"] = step.get("block_timestamp")
        out[f"{name}GasUsed"] = step.get("gas_used")
        out[f"{name}BlobGasUsed"] = step.get("blob_gas_used", 0 if step.get("gas_used") is not None else None)
        out[f"{name}Recovered"] = bool(step.get("recovered")) if step else None
        # node extras: when the step counted done (its receipt --l1-confirmations deep, block re-checked);
        # ``{past}AtUnix`` stays the receipt time
        out[f"{name}ConfirmedAtUnix"] = step.get("confirmed_at", at)
        out[f"{name}Confirmations"] = step.get("confirmations", 0 if step else None)
    out["status"] = "verified" if rec is not None and rec.get("status") == "executed" else "sealed"
    return out


def block_details(block: dict, batch: dict | None, next_batch: int, operator: str | None) -> dict:
    """zks_getBlockDetails for one recorded L2 block. ``next_batch``: the number the next sealed batch
    will get (ZKsync's answer for a block not yet in a batch); ``operator``: the sequencer's L1 address
    (ZKsync's ``operatorAddress``, the fee account; the zero address when the node has no L1 key)."""
    out = {
        "number": block["number"],
        "l1BatchNumber": batch["number"] if batch else (0 if block["number"] == 0 else next_batch),
        "timestamp": block["timestamp"],
        "l1TxCount": 0,
        "l2TxCount": len(block["tx_hashes"]),
        "rootHash": block["hash"],
        "gasUsed": block["gas_used"],
        "gasLimit": block["gas_limit"],
        "softFinalityAt": iso(block["seen_at"]),
        "softFinalityAtUnix": block["seen_at"],
        "operatorAddress": operator or "0x" + "00" * 20,
    }
    out.update(l1_fields(batch))
    if block["number"] == 0:  # genesis: batch 0, verified without L1 txs (storage_block.rs: number == 0)
        out["status"] = "verified"
    return out


def batch_details(batch: dict) -> dict:
    """zks_getL1BatchDetails for one batch."""
    out = {
        "number": batch["number"],
        "timestamp": batch["first_block_timestamp"],
        "l1TxCount": 0,
        "l2TxCount": batch["tx_count"],
        "rootHash": batch["new_root"],
        "prevRootHash": batch["prev_root"],
        "dataHash": batch["data_hash"],
        "firstBlock": batch["first_block"],
        "lastBlock": batch["last_block"],
        "sealedAt": iso(batch["sealed_at"]),
        "sealedAtUnix": batch["sealed_at"],
        "rawBytes": batch["raw_bytes"],
        "compressedBytes": batch["compressed_bytes"],
        "compressionRatio": batch["compression_ratio"],
        "nodeStatus": batch["status"],
        "dataAvailability": batch.get("data_availability", "calldata"),
        "publishedDataSource": batch.get("published_data_source"),
    }
    out.update(l1_fields(batch))
    if batch.get("refusal"):
        out["refusal"] = batch["refusal"]
    return out


def genesis_batch_details(root: str | None, timestamp: int) -> dict:
    """zks_getL1BatchDetails(0): ZKsync's genesis batch (block 0 only), verified without L1 txs."""
    out = {"number": 0, "timestamp": timestamp, "l1TxCount": 0, "l2TxCount": 0, "rootHash": root,
           "prevRootHash": None, "firstBlock": 0, "lastBlock": 0, "nodeStatus": "genesis"}
    out.update(l1_fields(None))
    out["status"] = "verified"
    return out
