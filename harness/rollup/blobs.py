"""EIP-4844 blobs for the rollup's batch data: packing, KZG versioned hashes, the trusted setup.

Pure functions of their arguments (no L1 connection): the sealer fixes a batch's L1 ``dataHash`` with
them before committing, :class:`harness.rollup.l1.RollupL1` sends and reads back blob transactions
with them. The KZG part (commitments, signing a blob tx with its cell proofs) runs in this process, or in
the node's KZG child process once one is installed (:func:`use_kzg_worker`): ckzg holds the GIL for each
whole call, which froze the node's intake for hundreds of ms per commit (:mod:`harness.rollup.kzg_worker`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time

from eth_utils import keccak

log = logging.getLogger("rollup.blobs")


def cache_kzg_trusted_setup() -> None:
    """eth-account 0.13 reloads the KZG trusted setup (≈1–4 s) three times per blob transaction it signs.

    It is a pure function of its arguments, so cache it inside eth-account's module (only that module's
    reference is replaced; ckzg itself is untouched). Signing a blob tx then costs ≈0.1 s per blob.
    """
    from eth_account.typed_transactions import base

    if not getattr(base.load_trusted_setup, "_rollup_cached", False):
        base.load_trusted_setup = functools.lru_cache(maxsize=4)(base.load_trusted_setup)
        base.load_trusted_setup._rollup_cached = True  # type: ignore[attr-defined]


def _kzg_trusted_setup():
    """The trusted setup eth-account signs blob txs with, loaded with its arguments (so cached for it too)."""
    from eth_account.typed_transactions import base

    cache_kzg_trusted_setup()
    return base.load_trusted_setup(base.TRUSTED_SETUP, 0)


def warm_kzg_trusted_setup() -> float:
    """Load (and cache) the KZG trusted setup now; returns the seconds it took.

    ckzg's loader holds the GIL for its whole run (≈3 s measured here, more on a loaded machine), so
    a node that first loads it when it seals its first blob batch freezes every thread -- RPC, block
    tracking -- for that long. A blob-DA node calls this during start-up, before it serves anything.
    """
    t0 = time.perf_counter()
    _kzg_trusted_setup()
    return time.perf_counter() - t0


def bytes32(name: str, value: bytes) -> bytes:
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes, got {value!r:.80}")
    return bytes(value)


def data_hash(data: bytes) -> bytes:
    """keccak256(data), what commitBatch stores as dataHash."""
    return keccak(bytes(data))


#: EIP-4844: 4096 field elements of 32 bytes per blob; we use 31 payload bytes per element (the first byte
#: stays 0 so every element is below the BLS12-381 modulus), after a 4-byte big-endian length prefix.
BLOB_BYTES = 131_072
BLOB_PAYLOAD_BYTES = 4096 * 31
MAX_BLOBS = 6


def encode_blobs(data: bytes) -> list[bytes]:
    """Pack ``data`` (with a 4-byte length prefix) into as many blobs as needed (at most MAX_BLOBS)."""
    payload = len(data).to_bytes(4, "big") + bytes(data)
    n = max(1, -(-len(payload) // BLOB_PAYLOAD_BYTES))
    if n > MAX_BLOBS:
        raise ValueError(
            f"{len(data)} bytes need {n} blobs; at most {MAX_BLOBS} "
            f"({MAX_BLOBS * BLOB_PAYLOAD_BYTES - 4} bytes) fit in one transaction"
        )
    payload = payload.ljust(n * BLOB_PAYLOAD_BYTES, b"\x00")
    blobs = []
    for b in range(n):
        chunk = payload[b * BLOB_PAYLOAD_BYTES : (b + 1) * BLOB_PAYLOAD_BYTES]
        blobs.append(b"".join(b"\x00" + chunk[i : i + 31] for i in range(0, BLOB_PAYLOAD_BYTES, 31)))
    return blobs


def decode_blobs(blobs: list[bytes]) -> bytes:
    """Inverse of :func:`encode_blobs`."""
    payload = b"".join(blob[i + 1 : i + 32] for blob in blobs for i in range(0, BLOB_BYTES, 32))
    size = int.from_bytes(payload[:4], "big")
    if size > len(payload) - 4:
        raise ValueError(f"blob payload declares {size} bytes but carries {len(payload) - 4}")
    return payload[4 : 4 + size]


def local_blob_versioned_hashes(blobs: list[bytes]) -> list[bytes]:
    """EIP-4844 versioned hashes of ``blobs``, computed in this process (KZG commitment, then
    0x01 || sha256(commitment)[1:]) with the trusted setup eth-account ships -- the same values the L1
    sees in the blob transaction, so a sealer can fix the batch's L1 dataHash before committing."""
    from eth_account.typed_transactions import base

    setup = _kzg_trusted_setup()
    out = []
    for blob in blobs:
        commitment = bytes(base.blob_to_kzg_commitment(bytes(blob), setup))
        out.append(b"\x01" + hashlib.sha256(commitment).digest()[1:])
    return out


#: where KZG work runs: None = in this process; a node installs its KzgWorker (a child process), because
#: ckzg holds the GIL for each whole call (see :mod:`harness.rollup.kzg_worker`)
_worker = None


def use_kzg_worker(worker) -> None:
    """Route :func:`blob_versioned_hashes` and :func:`sign_blob_tx` through ``worker`` (a started
    :class:`harness.rollup.kzg_worker.KzgWorker`), or back to this process with None."""
    global _worker
    _worker = worker


def release_kzg_worker(worker) -> None:
    """Route KZG work back to this process if ``worker`` is the one installed (another may be by now)."""
    global _worker
    if _worker is worker:
        _worker = None


def _via_worker(op: str, *args):
    from harness.rollup.kzg_worker import KzgWorkerError

    worker = _worker
    if worker is None:
        return None
    try:
        return getattr(worker, op)(*args)
    except KzgWorkerError as e:  # same values in-process; only the GIL stall comes back
        log.error("KZG worker failed (%s): computing %s in the node's own process", e, op)
        return None


def blob_versioned_hashes(blobs: list[bytes]) -> list[bytes]:
    """EIP-4844 versioned hashes of ``blobs`` (see :func:`local_blob_versioned_hashes`), in the KZG worker
    where one is installed."""
    got = _via_worker("versioned_hashes", blobs)
    return got if got is not None else local_blob_versioned_hashes(blobs)


def sign_blob_tx(key: str, tx: dict, blobs: list[bytes]) -> bytes:
    """The raw signed blob transaction (the network form eth-account builds: blobs, commitments and
    EIP-7594 cell proofs), signed in the KZG worker where one is installed."""
    got = _via_worker("sign_blob_tx", key, tx, blobs)
    if got is not None:
        return got
    from eth_account import Account

    cache_kzg_trusted_setup()
    return bytes(Account.from_key(key).sign_transaction(tx, blobs=blobs).raw_transaction)


def blob_data_hash(versioned_hashes: list[bytes] | tuple[bytes, ...]) -> bytes:
    """What commitBatchBlobs stores as dataHash: keccak256(abi.encodePacked(versioned hashes))."""
    return keccak(b"".join(bytes32("versioned hash", h) for h in versioned_hashes))
