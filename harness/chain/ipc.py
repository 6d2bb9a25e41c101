"""JSON-RPC over anvil's IPC endpoint (``anvil --ipc PATH``: a Unix stream socket).

The framing, as anvil serves it (foundry v1.7.1, ``crates/anvil/server/src/ipc.rs``): the server reads
a byte stream and cuts it into requests by JSON bracket depth (``JsonRpcCodec::decode``; no length
prefix, no delimiter needed); every reply is ``serde_json::to_string`` of the response followed by one
``\\n`` (``JsonRpcCodec::encode``). serde's compact output never holds a raw newline (newlines inside
strings are escaped), so a reply is exactly one line. Requests on one connection are processed
concurrently (``PubSubConnection`` polls them all, ``crates/anvil/server/src/pubsub.rs``), so replies
may come back in another order than the requests were sent: a connection here carries one request at
a time and reads its reply before sending the next one. A JSON-RPC batch (a JSON array) is one request
and gets one reply line (an array). Concurrency = one connection per thread (see
:class:`harness.chain.rpc.Rpc` with a socket path).

Who may connect: Linux checks write permission on the socket file for ``connect``; anvil creates it
with the process umask (``srwxr-xr-x`` under umask 022), so the harness puts it in a directory of
mode 0700 (:func:`private_dir`) and sets the socket itself to 0600 once anvil created it.

``sun_path`` holds at most 107 bytes: a longer socket path is reached through the directory's
``/proc/self/fd/N`` link (:func:`connect`), and anvil is started in that directory with the bare name.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

SUN_PATH_MAX = 100  # sockaddr_un.sun_path is 108 bytes with the NUL; stay clear of the edge


def fits_sun_path(path: Path) -> bool:
    return len(os.fsencode(str(path))) <= SUN_PATH_MAX


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or check an existing one is ours, and set it to 0700."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to uid {st.st_uid}, not to this process (uid {os.getuid()})")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def connect(path: Path, timeout_s: float) -> socket.socket:
    """A connected ``AF_UNIX`` stream socket to ``path`` with ``timeout_s`` on every send/receive."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout_s)
    try:
        if fits_sun_path(path):
            s.connect(str(path))
        else:
            fd = os.open(Path(path).parent, os.O_PATH | os.O_DIRECTORY)
            try:
                s.connect(f"/proc/self/fd/{fd}/{Path(path).name}")
            finally:
                os.close(fd)
    except BaseException:
        s.close()
        raise
    return s


class IpcConnection:
    """One connection, one request in flight: :meth:`send` it, then :meth:`receive` the reply line."""

    def __init__(self, path: Path, timeout_s: float = 30.0) -> None:
        self.sock = connect(path, timeout_s)
        self.rfile = self.sock.makefile("rb")
        self.requests = 0

    def send(self, payload: object) -> None:
        """Send one request (a JSON object, or an array = a batch). Raises ``OSError`` if it could not be
        sent whole (e.g. ``BrokenPipeError``: the engine closed this connection); anvil acts only on a
        complete JSON value, so a request that failed here was not run."""
        self.sock.sendall(json.dumps(payload, separators=(",", ":")).encode())
        self.requests += 1

    def receive(self) -> object:
        """The reply to the request just sent (one line). ``ConnectionError`` if the engine closed the
        connection first; ``TimeoutError`` after ``timeout_s`` without a complete reply."""
        line = self.rfile.readline()
        if not line.endswith(b"\n"):
            raise ConnectionError("the engine closed the IPC connection before replying")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            self.sock.close()


def answers(path: Path, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections and answers ``eth_chainId`` on the socket at ``path``."""
    if not Path(path).is_socket():
        return False
    try:
        ipc_call(path, "eth_chainId", timeout_s=timeout_s)
    except (OSError, ValueError, RuntimeError):
        return False
    return True


def ipc_call(path: Path, method: str, params: list | None = None, timeout_s: float = 5.0):
    """One JSON-RPC call on a fresh connection (:func:`harness.chain.rpc.rpc_call` over IPC); raises
    ``RpcError`` (a ``RuntimeError``) on an error reply, ``RpcTransportError`` (an ``OSError``) in transit."""
    from harness.chain.rpc import rpc_call

    return rpc_call(Path(path), method, params, timeout_s)
