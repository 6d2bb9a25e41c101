"""Durable state of the rollup node under its data dir.

- ``TxWal``: append-only write-ahead log of accepted raw transactions. A record
  is ``kind(1) | len(4) | crc32(4) | payload``; kind 1 = accepted raw tx,
  kind 2 = tombstone (tx hash the engine refused after logging). Appends are
  group-committed: the first waiter writes everything queued, fdatasyncs once,
  then wakes every waiter, so an acknowledgement always follows the sync.
  The file is preallocated in zero-filled chunks (``WAL_CHUNK_BYTES``), so an
  append changes neither the file's size nor its block map and the sync is
  a data flush only (measured here: p50 0.12 ms vs 0.4–4 ms for an append
  that grows the file). The log ends at the first header that is not a
  valid record (zeros, or a torn tail from a crash mid-write, detected by
  length/CRC); everything after it is truncated on open.
- ``NodeDb``: SQLite (WAL journal, synchronous=FULL) holding L2 block records,
  batches, the Merkle tree's nodes and leaves and small metadata.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.rollup.merkle import keccak

REC_TX, REC_TOMBSTONE = 1, 2
_HDR = struct.Struct(">BII")
#: the WAL grows by this much at a time (zero-filled, see the module docstring)
WAL_CHUNK_BYTES = 16 * 1024 * 1024


class WalError(RuntimeError):
    """The WAL could not be written (disk error); the tx was NOT accepted."""


@dataclass
class _Pending:
    data: bytes
    event: threading.Event
    records: list[tuple[int, bytes]]
    error: BaseException | None = None


#: group commit's gathering window (PostgreSQL's commit_delay with commit_siblings = 1): a leader that knows
#: of other callers on their way to the log (announced, not queued yet) waits up to this long for them, so one
#: sync covers them too; a lone caller never waits. 3 ms, not 1: at 16 instances on 2 cores a request that
#: has arrived is often not scheduled within 1 ms (16 instances, WAL benchmark: 1 ms 0.28-0.31 syncs/tx,
#: 3 ms 0.20-0.25, 5 ms no better and noisier); the wait only ever delays a caller someone else waits for
COMMIT_DELAY_S = 0.003


class TxWal:
    """Group-committed, fsync'd append-only log of raw transactions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[tuple[int, bytes]] = list(self._scan_and_repair())
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._end = os.fstat(self._fd).st_size  # the log's logical end (the scan truncated the rest)
        self._allocated = self._end
        self._grow(WAL_CHUNK_BYTES)
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._closed = False
        self.fsyncs = 0
        self.appended = 0
        self._leader = False  # a waiter is writing and syncing the queue right now
        self._coming = 0  # callers announced (announce()) whose records are not queued yet
        self.commit_delay_s = COMMIT_DELAY_S
        self._adopted = threading.local()  # an announcement handed to this thread (adopt())
        self.delayed_syncs = 0
        self.clock = None  # a StageClock for the fdatasync durations (the node sets its own)

    def _scan_and_repair(self) -> Iterator[tuple[int, bytes]]:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        pos, good = 0, 0
        while pos + _HDR.size <= len(data):
            kind, length, crc = _HDR.unpack_from(data, pos)
            body = data[pos + _HDR.size: pos + _HDR.size + length]
            if kind not in (REC_TX, REC_TOMBSTONE) or len(body) != length or zlib.crc32(body) != crc:
                break
            yield kind, body
            pos += _HDR.size + length
            good = pos
        if good != len(data):  # torn tail from a crash mid-append: drop it (it was never acknowledged)
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
                fh.flush()
                os.fsync(fh.fileno())

    def _grow(self, need: int) -> None:
        """Make sure ``need`` bytes past the logical end are allocated (zero-filled) and durable."""
        if self._end + need <= self._allocated:
            return
        size = self._end + max(need, WAL_CHUNK_BYTES)
        os.posix_fallocate(self._fd, self._allocated, size - self._allocated)
        os.fsync(self._fd)  # the new size and extents, once per chunk
        self._allocated = size

    @property
    def size_bytes(self) -> int:
        """Bytes of records in the log (the preallocated zeros after them not counted)."""
        return self._end

    def accepted(self) -> dict[str, bytes]:
        """tx hash (0x-hex) -> raw bytes of every logged, not tombstoned tx, in log order."""
        out: dict[str, bytes] = {}
        for kind, body in self.records:
            if kind == REC_TX:
                out["0x" + keccak(body).hex()] = body
            else:
                out.pop("0x" + body.hex(), None)
        return out

    def enqueue(self, kind: int, payloads: list[bytes]) -> _Pending:
        """Queue records for the next group commit and return at once (wait for it with :meth:`wait`).

        Records reach the file in the order they were queued, so a caller that queues under its own lock
        and waits outside it keeps its order without holding the lock across the fsync."""
        rec = b"".join(_HDR.pack(kind, len(p), zlib.crc32(p)) + p for p in payloads)
        item = _Pending(rec, threading.Event(), [(kind, p) for p in payloads])
        with self._cv:
            if self._closed:
                raise WalError("WAL is closed")
            self._queue.append(item)
        return item

    def announce(self) -> Callable[[], None]:
        """Say a caller is on its way to :meth:`enqueue` (decoding, checking); call the returned function
        once its records are queued or it has none (idempotent). A leader waits up to ``commit_delay_s``
        for announced callers before it syncs. A thread that :meth:`adopt` ed an earlier announcement gets
        that one back (once) instead of a new one."""
        adopted = getattr(self._adopted, "arrived", None)
        if adopted is not None:
            self._adopted.arrived = None
            return adopted
        with self._cv:
            self._coming += 1
        done = False

        def arrived() -> None:
            nonlocal done
            if not done:
                done = True
                with self._cv:
                    self._coming -= 1
                    self._cv.notify_all()

        return arrived

    def adopt(self, arrived: Callable[[], None] | None) -> None:
        """Hand an announcement made elsewhere (the RPC server announces a request carrying txs as soon as
        its body arrives, before it waits for a dispatch thread) to this thread: its next :meth:`announce`
        returns it. ``None`` drops what this thread holds. The caller still calls ``arrived`` when done
        (idempotent), so an announcement is never left counted."""
        self._adopted.arrived = arrived

    def wait(self, item: _Pending, timeout_s: float = 30.0) -> None:
        """Return once ``item`` is durable; raises WalError if the write failed or took too long.

        Group commit without a writer thread (leader/follower): a waiter that finds no sync in progress
        becomes the leader, writes *everything* queued so far in one write and one fdatasync, and wakes
        the others; those that queued meanwhile are covered by the next leader's sync. So concurrent
        requests share syncs and a lone request pays no thread hand-off. A leader that knows of callers on
        their way (:meth:`announce`) first waits up to ``commit_delay_s`` for them to queue."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cv:
                while not item.event.is_set() and self._leader:
                    if not self._cv.wait(deadline - time.monotonic()):
                        raise WalError(f"WAL sync did not complete within {timeout_s} s")
                if item.event.is_set():
                    break
                self._leader = True
                if self._coming > 0 and self.commit_delay_s > 0:  # others are on their way: gather them
                    self.delayed_syncs += 1
                    end = time.monotonic() + self.commit_delay_s
                    while self._coming > 0 and (left := end - time.monotonic()) > 0:
                        self._cv.wait(left)
                batch, self._queue = self._queue, []
            try:
                self._write(batch)
            finally:
                with self._cv:
                    self._leader = False
                    self._cv.notify_all()
        if item.error is not None:
            raise WalError(f"WAL write failed: {item.error}") from item.error

    def append_many(self, kind: int, payloads: list[bytes], timeout_s: float = 30.0) -> None:
        """Append records and return only after they are fsync'd (group commit)."""
        if payloads:
            self.wait(self.enqueue(kind, payloads), timeout_s)

    def append(self, raw: bytes) -> None:
        self.append_many(REC_TX, [raw])

    def tombstone(self, tx_hash: str) -> None:
        self.append_many(REC_TOMBSTONE, [bytes.fromhex(tx_hash[2:])])

    def _write(self, batch: list[_Pending]) -> None:
        """(the leader, outside the lock) write and sync ``batch``, then mark each item done."""
        err: BaseException | None = None
        try:
            data = b"".join(p.data for p in batch)
            self._grow(len(data))
            if os.pwrite(self._fd, data, self._end) != len(data):
                raise OSError(f"short write to {self.path}")
            t0 = time.perf_counter()
            os.fdatasync(self._fd)  # inside the preallocated region: a data flush
            if self.clock is not None:
                self.clock.record("wal_fdatasync", time.perf_counter() - t0)
                self.clock.count("wal_group_requests", len(batch))
            self._end += len(data)
            self.fsyncs += 1
            self.appended += len(batch)
            for p in batch:
                self.records.extend(p.records)
        except BaseException as e:  # noqa: BLE001 - reported to every waiter
            err = e
        for p in batch:
            p.error = err
            p.event.set()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            while self._leader:  # let a sync in progress finish
                self._cv.wait(5)
            pending, self._queue = self._queue, []
        if pending:  # queued, never awaited: write them (their callers may still be waiting)
            self._write(pending)
        os.close(self._fd)


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
  number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER NOT NULL,
  tx_hashes TEXT NOT NULL, gas_used INTEGER NOT NULL, gas_limit INTEGER NOT NULL,
  seen_at REAL NOT NULL, batch INTEGER);
CREATE TABLE IF NOT EXISTS batches (number INTEGER PRIMARY KEY, rec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tree_nodes (level INTEGER NOT NULL, idx BLOB NOT NULL, hash BLOB NOT NULL,
  PRIMARY KEY (level, idx));
CREATE TABLE IF NOT EXISTS leaves (key BLOB PRIMARY KEY, value BLOB NOT NULL);
"""


class NodeDb:
    """SQLite store; every method is thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # meta
    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # blocks
    def add_block(self, b: dict) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO blocks VALUES (?,?,?,?,?,?,?,NULL)",
                (b["number"], b["hash"], b["timestamp"], json.dumps(b["tx_hashes"]), b["gas_used"],
                 b["gas_limit"], b["seen_at"]),
            )

    def _block_row(self, r) -> dict:
        return {"number": r[0], "hash": r[1], "timestamp": r[2], "tx_hashes": json.loads(r[3]),
                "gas_used": r[4], "gas_limit": r[5], "seen_at": r[6], "batch": r[7]}

    def block(self, n: int) -> dict | None:
        with self._lock:
            r = self.conn.execute("SELECT * FROM blocks WHERE number=?", (n,)).fetchone()
        return self._block_row(r) if r else None

    def blocks(self, first: int, last: int | None = None) -> list[dict]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT * FROM blocks WHERE number>=? AND number<=? ORDER BY number",
                (first, last if last is not None else 2**62)).fetchall()
        return [self._block_row(r) for r in rows]

    def last_block(self) -> int:
        with self._lock:
            r = self.conn.execute("SELECT MAX(number) FROM blocks").fetchone()
        return r[0] or 0

    def delete_blocks_after(self, n: int) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM blocks WHERE number>?", (n,))

    # batches
    def batch(self, n: int) -> dict | None:
        with self._lock:
            r = self.conn.execute("SELECT rec FROM batches WHERE number=?", (n,)).fetchone()
        return json.loads(r[0]) if r else None

    def batch_numbers(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self.conn.execute("SELECT number FROM batches ORDER BY number")]

    def put_batch(self, rec: dict) -> None:
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO batches VALUES (?, ?)", (rec["number"], json.dumps(rec)))

    def seal_batch(self, rec: dict, tree_changes: dict[tuple[int, int], bytes | None],
                   leaf_changes: dict[bytes, bytes]) -> float:
        """Write the batch record, its block mapping and the tree delta in ONE transaction.

        Returns the seconds spent writing the tree delta (node and leaf rows) inside the transaction,
        so the caller can attribute the tree's own storage writes to the tree stage."""
        with self._lock:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("INSERT OR REPLACE INTO batches VALUES (?, ?)", (rec["number"], json.dumps(rec)))
                c.execute("UPDATE blocks SET batch=? WHERE number>=? AND number<=?",
                          (rec["number"], rec["first_block"], rec["last_block"]))
                t0 = time.perf_counter()
                self._write_tree(tree_changes, leaf_changes)
                tree_write_s = time.perf_counter() - t0
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return tree_write_s

    def save_tree(self, tree_changes: dict[tuple[int, int], bytes | None], leaf_changes: dict[bytes, bytes]) -> None:
        """Persist a tree delta on its own (the genesis state), in one transaction."""
        with self._lock:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            try:
                self._write_tree(tree_changes, leaf_changes)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _write_tree(self, tree_changes: dict[tuple[int, int], bytes | None], leaf_changes: dict[bytes, bytes]) -> None:
        """Apply a tree delta inside the caller's transaction (None = node became empty; zero value = no leaf)."""
        c, zero = self.conn, b"\x00" * 32
        c.executemany("INSERT OR REPLACE INTO tree_nodes VALUES (?,?,?)",
                      [(lv, idx.to_bytes(32, "big"), h) for (lv, idx), h in tree_changes.items() if h is not None])
        c.executemany("DELETE FROM tree_nodes WHERE level=? AND idx=?",
                      [(lv, idx.to_bytes(32, "big")) for (lv, idx), h in tree_changes.items() if h is None])
        c.executemany("INSERT OR REPLACE INTO leaves VALUES (?,?)",
                      [(k, v) for k, v in leaf_changes.items() if v != zero])
        c.executemany("DELETE FROM leaves WHERE key=?", [(k,) for k, v in leaf_changes.items() if v == zero])

    def load_tree(self) -> tuple[dict[tuple[int, int], bytes], dict[bytes, bytes]]:
        with self._lock:
            nodes = {(lv, int.from_bytes(idx, "big")): h
                     for lv, idx, h in self.conn.execute("SELECT level, idx, hash FROM tree_nodes")}
            leaves = dict(self.conn.execute("SELECT key, value FROM leaves").fetchall())
        return nodes, leaves
