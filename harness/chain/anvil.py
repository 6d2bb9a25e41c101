"""anvil (Foundry, from npm) as a managed child process.

    with Anvil(block_time=1, gas_limit=2_500_000) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))

Listens on 127.0.0.1. Without an explicit ``port`` anvil binds port 0 itself and the harness reads
the port it reports on stdout ("Listening on 127.0.0.1:PORT"), raced against the process exiting and
a timeout: no pick-then-bind race, and no foreign listener can answer for it. An explicit port that
is already in use is refused. Runs in its own process group, is ready when ``eth_chainId`` answers
with its chain id and the process is still alive, keeps its log file.

With ``ipc_path`` anvil also serves JSON-RPC on a Unix socket (``--ipc PATH``, see
:mod:`harness.chain.ipc`): the socket's directory is made mode 0700, the socket is set to 0600 as soon
as anvil created it, and readiness is ``eth_chainId`` answered over that socket (raced against the
process exiting and a timeout). anvil cannot switch its HTTP listener off (v1.7.1
``crates/anvil/src/lib.rs``: one ``TcpListener::bind`` per ``--host`` address, and
``NodeConfig::with_host`` turns an empty host list into 127.0.0.1), so in IPC mode it still listens on
an OS-assigned 127.0.0.1 port; the harness does not read that port (``url`` raises), and never uses or
publishes it. Any process on the host can still find it (``ss -ltn``) and talk to it: IPC mode keeps the
port out of everything the harness hands out, it does not make the port unreachable.

The binary: the npm package's (``node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil``, pinned in
package-lock.json), or exactly the one named by env ``ANVIL_BINARY``. Any other anvil on ``PATH`` is
used only when env ``ANVIL_FROM_PATH=1`` says so. :func:`anvil_version` records the real binary's
``--version`` for results and provenance.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import procs
from harness.chain import ipc
from harness.chain.rpc import rpc_call

REPO = Path(__file__).resolve().parents[2]
ANVIL_BIN = REPO / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
CAST_BIN = REPO / "node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
LISTENING_RE = r"Listening on 127\.0\.0\.1:(\d+)"


def anvil_binary() -> Path:
    """The anvil to run: env ``ANVIL_BINARY`` if set, else the npm package's; ``PATH`` only if
    env ``ANVIL_FROM_PATH=1`` (an explicit choice, never a silent fallback)."""
    explicit = os.environ.get("ANVIL_BINARY")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"ANVIL_BINARY={explicit} is not a file")
        return path
    if ANVIL_BIN.is_file():
        return ANVIL_BIN
    if os.environ.get("ANVIL_FROM_PATH") == "1":
        found = shutil.which("anvil")
        if found:
            return Path(found)
        raise FileNotFoundError("ANVIL_FROM_PATH=1 but no anvil on PATH")
    raise FileNotFoundError(
        f"anvil not found at {ANVIL_BIN}: run `./run setup` (npm ci) first, or name a binary with "
        "env ANVIL_BINARY=/path/to/anvil (or ANVIL_FROM_PATH=1 to use the anvil on PATH)"
    )


@functools.lru_cache(maxsize=8)
def _version_of(binary: str) -> dict[str, Any]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    text = (out.stdout or out.stderr).strip()
    version = re.search(r"Version:\s*(\S+)", text) or re.search(r"anvil\s+(\d+\.\d+\.\d+\S*)", text)
    commit = re.search(r"Commit SHA:\s*([0-9a-f]+)", text)
    return {
        "binary": binary,
        "version": version.group(1) if version else None,
        "commit": commit.group(1) if commit else None,
        "version_output": text.splitlines()[:4],
        "source": "ANVIL_BINARY"
        if os.environ.get("ANVIL_BINARY")
        else ("npm" if Path(binary) == ANVIL_BIN else "PATH (ANVIL_FROM_PATH=1)"),
    }


def anvil_version(binary: Path | None = None) -> dict[str, Any]:
    """``{'binary', 'version', 'commit', 'version_output', 'source'}`` of the anvil actually run."""
    return dict(_version_of(str(binary or anvil_binary())))


@dataclass
class Anvil:
    """A running anvil. Use as a context manager, or call start()/stop() in try/finally."""

    block_time: float | None = None  # None: automine
    gas_limit: int | None = None
    chain_id: int = 31337
    accounts: int = 10
    balance_eth: int = 10_000
    mnemonic: str = DEFAULT_MNEMONIC
    hardfork: str | None = None
    slots_in_an_epoch: int | None = None
    extra_args: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    port: int | None = None
    ready_timeout_s: float = 30.0
    ipc_path: Path | None = None  # also serve on this Unix socket (0600, in a 0700 dir); HTTP port not read

    proc: Any = field(default=None, init=False, repr=False)
    log_path: Path | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        if self.port is None and self.ipc_path is not None:
            raise RuntimeError(f"this anvil is reached over IPC ({self.ipc_path}); the port of its HTTP "
                               "listener (which anvil cannot switch off) is not read")
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line; ``--port 0`` (anvil picks the port) until :meth:`start` learned it."""
        cmd = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port if self.port is not None else 0),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_eth),
            "--mnemonic",
            self.mnemonic,
        ]
        if self.block_time is not None:
            cmd += ["--block-time", f"{self.block_time:g}"]
        if self.gas_limit is not None:
            cmd += ["--gas-limit", str(self.gas_limit)]
        if self.hardfork:
            cmd += ["--hardfork", self.hardfork]
        if self.slots_in_an_epoch:
            cmd += ["--slots-in-an-epoch", str(self.slots_in_an_epoch)]
        if self.ipc_path is not None:  # a path too long for sun_path: the bare name, run in its directory
            path = Path(self.ipc_path)
            cmd += ["--ipc", str(path) if ipc.fits_sun_path(path) else path.name]
        return cmd + list(self.extra_args)

    def start(self) -> Anvil:
        """Start anvil and wait until it is ready (see the module docstring). Raises
        :class:`~harness.procs.ProcessError` with the log tail if it exits or is not ready in time."""
        explicit_port = self.port is not None
        if explicit_port and procs.port_in_use(self.port):
            raise procs.ProcessError(
                f"port {self.port} is already in use (a leftover anvil?): refusing to reuse it"
            )
        log_dir = Path(self.log_dir) if self.log_dir else Path(tempfile.mkdtemp(prefix="anvil-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f"anvil-{self.port}-" if explicit_port else "anvil-", suffix=".log", dir=log_dir
        )
        os.close(fd)
        self.log_path = Path(name)
        if self.ipc_path is not None:
            return self._start_ipc(Path(self.ipc_path))
        self.proc = procs.start(self.command(), self.log_path)
        what = f"anvil (pid {self.proc.pid})"
        try:
            m = procs.wait_for_log_line(self.proc, self.log_path, LISTENING_RE, self.ready_timeout_s, what)
            reported = int(m.group(1))
            if explicit_port and reported != self.port:
                raise procs.ProcessError(f"{what} listens on {reported}, not the requested port {self.port}")
            self.port = reported
            what = f"anvil on port {self.port} (pid {self.proc.pid})"
            procs.wait_ready(
                self.proc,
                lambda: int(rpc_call(self.url, "eth_chainId", timeout=1.0), 16) == self.chain_id,
                self.ready_timeout_s,
                what,
                self.log_path,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _start_ipc(self, path: Path) -> Anvil:
        """Start with ``--ipc``: ready when ``eth_chainId`` answers over the socket (set to 0600 first)."""
        ipc.private_dir(path.parent)
        # anvil would delete the file and take the path over from a live server: refuse, after giving one
        # that was just SIGKILLed (a crashed node's engine, reaped by kill_stale_children) time to go
        deadline = time.monotonic() + 5.0
        while ipc.answers(path):
            if time.monotonic() > deadline:
                raise procs.ProcessError(f"{path}: another process already serves this socket: refusing to "
                                         "replace it")
            time.sleep(0.1)
        self.proc = procs.start(self.command(), self.log_path, cwd=None if ipc.fits_sun_path(path) else path.parent)
        what = f"anvil on {path} (pid {self.proc.pid})"

        def probe() -> bool:
            if not path.is_socket():
                return False
            os.chmod(path, 0o600)
            return int(ipc.ipc_call(path, "eth_chainId", timeout_s=1.0), 16) == self.chain_id

        try:
            procs.wait_ready(self.proc, probe, self.ready_timeout_s, what, self.log_path)
            mode = path.stat().st_mode & 0o777
            if mode != 0o600:
                raise procs.ProcessError(f"{what}: socket mode {mode:o}, expected 600")
        except BaseException:
            self.stop()
            raise
        return self

    def info(self) -> dict[str, Any]:
        """What a result should record about this node: URL (or IPC path), pid, log file, the binary and
        its version."""
        return {
            "url": None if self.port is None and self.ipc_path is not None else self.url,
            "ipc_path": str(self.ipc_path) if self.ipc_path is not None else None,
            "pgid": self.pgid,
            "log_path": str(self.log_path) if self.log_path else None,
            "anvil": anvil_version(),
        }

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        if self.proc is not None:
            procs.kill_group(self.proc.pid, proc=self.proc)
            self.proc = None
            if self.ipc_path is not None:  # the socket file this anvil made (no one serves it any more)
                Path(self.ipc_path).unlink(missing_ok=True)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


SETUP_GAS_LIMIT = 1_000_000_000  # block gas limit while deploying/funding (the profile's applies afterwards)


def profile_anvil(profile, accounts: int = 20, log_dir: Path | None = None, **kw) -> Anvil:
    """An :class:`Anvil` for a :class:`~harness.chain.profiles.ChainProfile`, not yet started.

    It starts with mining *off* (``--no-mining``; setup uses ``evm_mine``), a large setup gas
    limit and the profile's constant base fee; :func:`apply_profile` then switches to the
    profile's block gas limit and interval mining. Interval mining, not automine: with automine
    and concurrent senders anvil can leave txs pending (foundry #10122).
    """
    if float(profile.block_time_s) != int(profile.block_time_s):
        raise ValueError(
            f"profile {profile.name}: block_time_s={profile.block_time_s} is fractional; "
            "evm_setIntervalMining takes whole seconds"
        )
    extra = ["--no-mining", "--block-base-fee-per-gas", str(profile.base_fee_wei)]
    return Anvil(
        gas_limit=max(profile.gas_limit, SETUP_GAS_LIMIT),
        accounts=accounts,
        balance_eth=1_000_000,
        extra_args=extra,
        log_dir=log_dir,
        **kw,
    )


def apply_profile(url: str, profile) -> None:
    """Switch a running anvil to the profile: block gas limit, then interval mining (whole seconds).

    anvil-only methods (``anvil_setBlockGasLimit``, ``evm_setIntervalMining``).
    """
    rpc_call(url, "anvil_setBlockGasLimit", [hex(profile.gas_limit)])
    rpc_call(url, "evm_mine")  # the next block carries the new gas limit
    rpc_call(url, "evm_setIntervalMining", [int(profile.block_time_s)])
