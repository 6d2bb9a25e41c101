"""The node's KZG work in a child process: blob commitments (versioned hashes) and signing blob
transactions (EIP-7594 cell proofs), so the node's own interpreter lock is never held by it.

Why: ckzg (what eth-account signs blob txs with) holds the GIL for the whole of each call. Profiled in the
node at the 5-instance swap load (py-spy ``--gil``, 2026-12-03): ``compute_cells_and_kzg_proofs`` for a
batch's commit tx was 24 % of all the node's GIL time and froze every other thread (HTTP intake, block
tracking) for hundreds of ms at a time (the generator's ``eth_sendRawTransaction`` p99 97 ms, max 374 ms,
where its p50 was 6.6 ms). Loading the trusted setup (≈3 s, GIL held) moves here too.

Protocol (parent <-> child, our own pipes): a 4-byte big-endian length, then a pickle, both ways. The child
answers ``("ok", value)`` or ``("error", text)``; its first message is ``("ready", setup_load_s)``.
Requests are served one at a time (the parent holds a lock across each exchange).

The child runs in its own process group (``start_new_session``) and is killed (group) in :meth:`stop`.
If it dies, :meth:`KzgWorker.call` raises :class:`KzgWorkerError`; :mod:`harness.rollup.blobs` then computes
in-process (same values, only the GIL stall comes back) and logs it.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness import procs


class KzgWorkerError(RuntimeError):
    """The KZG child is gone or answered with an error."""


def _read_exact(fd: int, n: int, deadline: float | None = None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("KZG worker did not answer in time")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("KZG worker closed its pipe")
        buf += chunk
    return bytes(buf)


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _recv(fd: int, deadline: float | None = None) -> Any:
    (n,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    return pickle.loads(_read_exact(fd, n, deadline))  # noqa: S301 - our own child's pipe


class KzgWorker:
    """One KZG child process. ``start()`` returns the seconds the child took to load the trusted setup."""

    def __init__(self, log_path: Path, ready_timeout_s: float = 120.0, call_timeout_s: float = 300.0) -> None:
        self.log_path = Path(log_path)
        self.ready_timeout_s, self.call_timeout_s = ready_timeout_s, call_timeout_s
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.calls = 0
        self.busy_s = 0.0

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> float:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harness.rollup.kzg_worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            tag, value = self._read(time.monotonic() + self.ready_timeout_s)
        except Exception as e:
            self.stop()
            raise KzgWorkerError(f"KZG worker did not start: {e}\n{procs.log_tail(self.log_path)}") from None
        if tag != "ready":
            self.stop()
            raise KzgWorkerError(f"KZG worker said {tag!r} instead of ready: {value}")
        return float(value)

    def _read(self, deadline: float) -> tuple[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:  # raced against the child exiting
            r, _, _ = select.select([fd], [], [], min(0.5, max(0.0, deadline - time.monotonic())))
            if r:
                return _recv(fd, deadline)
            if self.proc.poll() is not None:
                raise KzgWorkerError(f"KZG worker exited with code {self.proc.returncode}")
            if time.monotonic() >= deadline:
                raise TimeoutError("KZG worker did not answer in time")

    def call(self, op: str, *args: Any) -> Any:
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                raise KzgWorkerError("KZG worker is not running")
            t0 = time.perf_counter()
            try:
                assert self.proc.stdin is not None
                _send(self.proc.stdin.fileno(), (op, args))
                tag, value = self._read(time.monotonic() + self.call_timeout_s)
            except (OSError, EOFError, TimeoutError, KzgWorkerError) as e:
                self._kill()  # the pipe's framing is lost: nobody may read it again
                raise KzgWorkerError(f"KZG worker failed during {op}: {e}") from None
            self.calls += 1
            self.busy_s += time.perf_counter() - t0
        if tag != "ok":
            raise KzgWorkerError(f"KZG worker: {op}: {value}")
        return value

    def versioned_hashes(self, blobs: list[bytes]) -> list[bytes]:
        return self.call("versioned_hashes", [bytes(b) for b in blobs])

    def sign_blob_tx(self, key: str, tx: dict, blobs: list[bytes]) -> bytes:
        return self.call("sign_blob_tx", key, dict(tx), [bytes(b) for b in blobs])

    def stats(self) -> dict[str, Any]:
        return {"running": self.proc is not None and self.proc.poll() is None, "calls": self.calls,
                "busy_s": round(self.busy_s, 3)}

    def _kill(self) -> None:
        if self.proc is not None:
            procs.kill_group(self.proc.pid, grace_s=2.0, proc=self.proc)
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass

    def stop(self) -> None:
        self._kill()
        self.proc = None


# -- the child ---------------------------------------------------------------------------------------------
def _child_ops() -> dict:
    from eth_account import Account

    from harness.rollup import blobs as b

    def sign_blob_tx(key: str, tx: dict, blob_list: list[bytes]) -> bytes:
        return bytes(Account.from_key(key).sign_transaction(tx, blobs=blob_list).raw_transaction)

    return {"versioned_hashes": b.local_blob_versioned_hashes, "sign_blob_tx": sign_blob_tx}


def main() -> int:
    rd, wr = sys.stdin.buffer.fileno(), sys.stdout.buffer.fileno()
    sys.stdout = sys.stderr  # nothing else may write to the protocol pipe
    from harness.rollup.blobs import warm_kzg_trusted_setup

    ops = _child_ops()
    _send(wr, ("ready", warm_kzg_trusted_setup()))
    while True:
        try:
            op, args = _recv(rd)
        except EOFError:
            return 0
        try:
            _send(wr, ("ok", ops[op](*args)))
        except Exception as e:  # noqa: BLE001 - reported to the parent
            _send(wr, ("error", f"{type(e).__name__}: {e}"))


if __name__ == "__main__":
    raise SystemExit(main())
