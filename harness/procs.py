"""Child processes the harness owns: own process group, killed in ``finally``.

Readiness is a real probe raced against the process exiting and a timeout,
never a bare sleep. Ports come from the OS; a port already in use is refused.

Prefer letting the child bind port 0 itself and reading the port it reports
(:func:`wait_for_log_line`): :func:`free_port` binds, closes and hands the
number on, so another process can take it before the child binds it (a race
under xdist), and a foreign listener on that port would answer the probe.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ProcessError(RuntimeError):
    """A child process exited or never became ready. The message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS just handed out (bind to port 0).

    Racy by nature (the port is free when this returns, not when the caller binds it): use it only
    for children that cannot bind port 0 and report the port themselves (see :func:`wait_for_log_line`).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def log_tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not Path(path).is_file():
        return ""
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def start(
    cmd: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, stdout+stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own session => own process group
            env=env,
            cwd=cwd,
        )
    finally:
        log.close()


def wait_ready(
    proc: subprocess.Popen,
    probe: Callable[[], bool],
    timeout_s: float,
    what: str,
    log_path: Path | None = None,
    interval_s: float = 0.05,
) -> float:
    """Poll ``probe`` until it returns True; fail fast if ``proc`` exits. Returns seconds waited."""
    t0 = time.monotonic()
    while True:
        code = proc.poll()
        if code is not None:
            raise ProcessError(f"{what} exited with code {code} before it was ready\n{log_tail(log_path)}")
        try:
            ok = probe()
        except Exception:  # noqa: BLE001 - a probe failing just means "not yet"
            ok = False
        if ok:
            # the answer must come from *our* child: if it died meanwhile, something else answered
            ensure_alive(proc, what, log_path)
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise ProcessError(f"{what} not ready after {timeout_s:.0f} s\n{log_tail(log_path)}")
        time.sleep(interval_s)


def wait_for_log_line(
    proc: subprocess.Popen,
    log_path: Path,
    pattern: str,
    timeout_s: float,
    what: str,
    interval_s: float = 0.02,
    start_offset: int = 0,
) -> re.Match:
    """Wait until the child's log (from byte ``start_offset``) has a line matching ``pattern``.

    Raced against the process exiting (error with the log tail) and ``timeout_s``. Returns the match
    (e.g. ``r"Listening on 127\\.0\\.0\\.1:(\\d+)"`` to learn the port a child bound with port 0).
    """
    rx = re.compile(pattern)
    t0 = time.monotonic()
    while True:
        code = proc.poll()  # poll first: a line written just before exiting still counts as a failure
        try:
            with open(log_path, "rb") as f:
                f.seek(start_offset)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
        m = rx.search(text)
        if m and code is None:
            return m
        if code is not None:
            raise ProcessError(f"{what} exited with code {code} before it was ready\n{log_tail(log_path)}")
        if time.monotonic() - t0 > timeout_s:
            raise ProcessError(
                f"{what}: no line matching {pattern!r} after {timeout_s:.0f} s\n{log_tail(log_path)}"
            )
        time.sleep(interval_s)


def ensure_alive(proc: subprocess.Popen, what: str, log_path: Path | None = None) -> None:
    """Raise :class:`ProcessError` (with the log tail) if ``proc`` has exited."""
    code = proc.poll()
    if code is not None:
        raise ProcessError(f"{what} exited with code {code} right after it was ready\n{log_tail(log_path)}")


def kill_group(pid_or_pgid: int, grace_s: float = 3.0, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group, then SIGKILL after ``grace_s``. Safe if already gone."""
    try:
        pgid = os.getpgid(pid_or_pgid) if proc is not None else pid_or_pgid
    except ProcessLookupError:
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                break
        else:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
