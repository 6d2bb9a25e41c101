"""The sequencer: decode and validate raw txs, log them durably, then hand them to the L2 engine.

Order for every accepted tx: decode + recover the sender (coincurve; no lock held) -> check and reserve
the nonce and queue the WAL record (under the sequencer lock, so WAL order == nonce order) -> wait for
the WAL's group commit (no lock held: every request waiting shares one fsync) -> forward to the engine
-> acknowledge with the hash. If the engine refuses a logged tx, a tombstone is logged, the client gets
the engine's error (so a restart never replays it) and the sender's nonce view is re-read from the
engine. Nonces: a tx must carry exactly the sender's next nonce (no gaps: a gapped tx could wait
forever, which would count as "accepted but lost").
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import coincurve
import rlp
from eth_utils import to_checksum_address

from harness.chain.rpc import Rpc
from harness.rollup.merkle import keccak
from harness.rollup.stage_clock import StageClock
from harness.rollup.store import REC_TX, TxWal

MAX_TX_BYTES = 128 * 1024
#: txs checked and logged per hold of the sequencer lock (a 5,000-tx batch no longer holds it for seconds)
LOCK_CHUNK = 256
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class TxRejected(Exception):
    """Client-facing rejection with a JSON-RPC error code."""

    def __init__(self, message: str, code: int = -32000) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class DecodedTx:
    hash: str
    sender: str
    nonce: int
    chain_id: int | None
    gas: int
    raw: bytes


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big") if b else 0


def recover_sender(signing_hash: bytes, y_parity: int, r: int, s: int) -> str:
    """The checksummed address whose key made signature (r, s, y_parity) over ``signing_hash``
    (secp256k1 public-key recovery with coincurve); raises ValueError for an invalid signature."""
    if y_parity not in (0, 1) or not (0 < r < SECP256K1_N) or not (0 < s < SECP256K1_N):
        raise ValueError("signature values out of range")
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    pub = coincurve.PublicKey.from_signature_and_message(sig, signing_hash, hasher=None)
    return to_checksum_address(keccak(pub.format(compressed=False)[1:])[-20:])


def decode_raw(raw: bytes) -> DecodedTx:
    """Decode a signed raw tx (EIP-155 legacy, 2930, 1559) and recover its sender; raises TxRejected with
    a clear reason."""
    if not raw:
        raise TxRejected("empty transaction", -32602)
    if len(raw) > MAX_TX_BYTES:
        raise TxRejected(f"transaction too large: {len(raw)} bytes > {MAX_TX_BYTES}", -32602)
    t = raw[0]
    try:
        if t >= 0xC0:
            f = rlp.decode(raw)
            if not isinstance(f, list) or len(f) != 9:
                raise TxRejected("malformed legacy transaction (expected 9 RLP fields)", -32602)
            nonce, gas, v = _int(f[0]), _int(f[2]), _int(f[6])
            if v in (27, 28):
                raise TxRejected("only replay-protected (EIP-155) transactions are accepted")
            if v < 35:
                raise TxRejected(f"invalid signature: v = {v}")
            chain_id = (v - 35) // 2
            y_parity = v - 35 - 2 * chain_id
            signing = rlp.encode([*f[:6], chain_id, b"", b""])
        elif t in (1, 2):
            f = rlp.decode(raw[1:])
            if not isinstance(f, list) or len(f) != (11 if t == 1 else 12):
                raise TxRejected(f"malformed type-{t} transaction (wrong field count)", -32602)
            chain_id, nonce = _int(f[0]), _int(f[1])
            gas = _int(f[3] if t == 1 else f[4])
            y_parity = _int(f[-3])
            signing = bytes([t]) + rlp.encode(f[:-3])
        elif t in (3, 4):
            raise TxRejected(f"type-{t} transactions are not supported by this rollup")
        else:
            raise TxRejected(f"unknown transaction type 0x{t:02x}", -32602)
        r, s = _int(f[-2]), _int(f[-1])
    except TxRejected:
        raise
    except Exception as e:  # noqa: BLE001 - rlp raises many kinds
        raise TxRejected(f"malformed transaction: {type(e).__name__}: {e}", -32602) from None
    try:
        sender = recover_sender(keccak(signing), y_parity, r, s)
    except Exception as e:  # noqa: BLE001
        raise TxRejected(f"invalid signature: {e}") from None
    return DecodedTx("0x" + keccak(raw).hex(), sender, nonce, chain_id, gas, raw)


class Sequencer:
    """Validates, logs and forwards raw transactions. Thread-safe."""

    def __init__(self, wal: TxWal, engine: Rpc, chain_id: int, block_gas_limit: int,
                 clock: StageClock | None = None) -> None:
        self.wal, self.engine = wal, engine
        self.clock = clock if clock is not None else StageClock()
        self.chain_id, self.block_gas_limit = chain_id, block_gas_limit
        self._lock = threading.Lock()
        self._next_nonce: dict[str, int] = {}
        self.accepted = 0
        self.rejected = 0
        self.raw_by_hash: dict[str, bytes] = wal.accepted()

    def _expected_nonce(self, sender: str) -> int:
        n = self._next_nonce.get(sender)
        if n is None:
            n = int(self.engine.call("eth_getTransactionCount", [sender, "pending"]), 16)
            self._next_nonce[sender] = n
        return n

    def _check(self, raw: bytes) -> DecodedTx:
        """Stateless checks (no lock): decode, recover, chain id, gas bounds."""
        tx = decode_raw(raw)
        if tx.chain_id != self.chain_id:
            raise TxRejected(f"invalid chain id {tx.chain_id}: this rollup is chain {self.chain_id}")
        if tx.gas > self.block_gas_limit:
            raise TxRejected(f"gas limit {tx.gas} exceeds the block gas limit {self.block_gas_limit}")
        if tx.gas < 21_000:
            raise TxRejected(f"intrinsic gas too low: {tx.gas} < 21000")
        return tx

    def submit_many(self, raws: list[bytes]) -> list[str | TxRejected]:
        """Accept a list of raw txs; each result is the tx hash or the rejection. Concurrent callers share
        the WAL's group commit (one fsync for every tx waiting)."""
        results: list[str | TxRejected | None] = [None] * len(raws)
        arrived = self.wal.announce()  # a sync leader may wait a moment for this request's records
        ok: list[tuple[int, DecodedTx]] = []
        clock, t0 = self.clock, time.perf_counter()
        try:
            decoded: list[tuple[int, DecodedTx]] = []
            for i, raw in enumerate(raws):
                try:
                    decoded.append((i, self._check(raw)))
                except TxRejected as e:
                    results[i] = e
            t1 = time.perf_counter()
            clock.record("decode_recover", t1 - t0)
            for start in range(0, len(decoded), LOCK_CHUNK):  # the lock is held for one chunk at a time
                chunk_ok = self._reserve(decoded[start:start + LOCK_CHUNK], results)
                arrived()  # queued (or nothing to queue): no leader waits for this request any more
                t2 = time.perf_counter()
                clock.record("reserve", t2 - t1)
                if chunk_ok is None:
                    continue
                chunk, pending = chunk_ok
                try:
                    self.wal.wait(pending)  # durable BEFORE anyone is acknowledged (no lock held)
                    t1 = time.perf_counter()
                    clock.record("wal_wait", t1 - t2)
                except Exception as e:  # noqa: BLE001
                    with self._lock:
                        self._unreserve(chunk, results, f"not accepted: write-ahead log failed: {e}")
                    continue
                ok.extend(chunk)
        finally:
            arrived()
        if ok:
            t3 = time.perf_counter()
            replies = self.engine.batch_raw([("eth_sendRawTransaction", ["0x" + tx.raw.hex()]) for _, tx in ok])
            clock.record("engine_forward", time.perf_counter() - t3)
            for (i, tx), rep in zip(ok, replies, strict=False):
                if "error" in rep:
                    err = rep["error"]
                    self.wal.tombstone(tx.hash)
                    with self._lock:
                        self.raw_by_hash.pop(tx.hash, None)
                        self._next_nonce.pop(tx.sender, None)  # re-read from the engine next time
                    results[i] = TxRejected(f"engine refused: {err.get('message')}", err.get("code", -32000))
                else:
                    results[i] = tx.hash
        clock.record("submit_total", time.perf_counter() - t0)
        with self._lock:
            for r in results:
                if isinstance(r, TxRejected):
                    self.rejected += 1
                else:
                    self.accepted += 1
        return results  # type: ignore[return-value]

    def _reserve(self, decoded: list[tuple[int, DecodedTx]], results: list):
        """(takes the lock) check and reserve each tx's nonce and queue the chunk's WAL records, in nonce order;
        returns (reserved txs, the WAL item to wait for) or None when nothing was reserved."""
        ok: list[tuple[int, DecodedTx]] = []
        with self._lock:
            for i, tx in decoded:
                try:
                    if tx.hash in self.raw_by_hash:
                        raise TxRejected(f"already known: {tx.hash}")
                    expected = self._expected_nonce(tx.sender)
                    if tx.nonce < expected:
                        raise TxRejected(f"nonce too low: next nonce {expected}, tx nonce {tx.nonce}")
                    if tx.nonce > expected:
                        raise TxRejected(f"nonce too high: next nonce {expected}, tx nonce {tx.nonce} (gaps refused)")
                    self._next_nonce[tx.sender] = expected + 1
                    self.raw_by_hash[tx.hash] = tx.raw
                    ok.append((i, tx))
                except TxRejected as e:
                    results[i] = e
                except Exception as e:  # noqa: BLE001 - e.g. engine unreachable while reading a nonce
                    results[i] = TxRejected(f"sequencer error: {e}")
            if not ok:
                return None
            try:
                return ok, self.wal.enqueue(REC_TX, [tx.raw for _, tx in ok])
            except Exception as e:  # noqa: BLE001
                self._unreserve(ok, results, f"not accepted: write-ahead log failed: {e}")
                return None

    def _unreserve(self, ok: list[tuple[int, DecodedTx]], results: list, why: str) -> None:
        """(lock held) undo the reservations of txs that were not logged; their senders' nonces are re-read
        from the engine next time."""
        for i, tx in ok:
            results[i] = TxRejected(why)
            self.raw_by_hash.pop(tx.hash, None)
            self._next_nonce.pop(tx.sender, None)
