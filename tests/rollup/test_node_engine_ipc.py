"""Issue 12 item 3: the node's engines are not reachable around the sequencer through anything it publishes.

On the shared node: both engines' IPC sockets exist in ``<data dir>/engines`` (directory 0700, sockets 0600;
another uid cannot connect), a request over the socket reaches the node's own engine, and neither
``rollup_status``, the ready line nor the node's log names an engine URL or an engine's HTTP port (anvil
cannot switch its HTTP listener off; the ports are read here from the engines' own log files). On bare
engines: the IPC client's batches and per-thread connections, reconnect after an engine restart on the
same path, a live socket is never taken over, and a socket path longer than ``sun_path`` works. The HTTP
fallback only when asked for (``--engine-transport http``), reported and warned about.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from fixtures.rollup import l1_operator_key
from harness import procs
from harness.chain import ipc
from harness.chain.anvil import LISTENING_RE
from harness.chain.rpc import rpc_call
from harness.rollup.engine import Engine, EngineConfig

pytestmark = [pytest.mark.chain]
ENGINES = ("l2-engine", "prover-engine")
URL_RE = re.compile(r"(?:https?|wss?)://[^\s\"']+")


def _engine_http_ports(data_dir: Path) -> set[int]:
    """The HTTP ports the engines' anvils listen on anyway, from their own logs (0600 files)."""
    ports = set()
    for f in (data_dir / "logs").glob("anvil-*.log"):
        ports |= {int(m) for m in re.findall(LISTENING_RE, f.read_text(errors="replace"))}
    return ports


def _names_port(text: str, port: int) -> bool:
    """``text`` names ``port`` as an address does (``host:PORT``, ``port=PORT``, ``"port": PORT``); a bare
    number is not searched for (a byte count or a pid may equal a port by chance)."""
    return re.search(rf"(?i)(?::|port\W{{0,3}}){port}(?![0-9])", text) is not None


def test_engine_sockets_private_and_no_engine_url_published(rollup_env) -> None:
    d = rollup_env.data_dir
    sock_dir = d / "engines"
    st = sock_dir.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid(), oct(st.st_mode)
    for name in ENGINES:
        p = sock_dir / f"{name}.ipc"
        assert p.is_socket(), f"{p} missing"
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, oct(p.stat().st_mode)

    # a request over the socket reaches the node's own L2 engine: same chain, same blocks
    sock = sock_dir / "l2-engine.ipc"
    assert int(ipc.ipc_call(sock, "eth_chainId"), 16) == int(rpc_call(rollup_env.url, "eth_chainId"), 16)
    head = int(rpc_call(rollup_env.url, "eth_blockNumber"), 16)
    assert head >= 1
    assert ipc.ipc_call(sock, "eth_getBlockByNumber", [hex(head), False])["hash"] == \
        rpc_call(rollup_env.url, "eth_getBlockByNumber", [hex(head), False])["hash"]

    status = rpc_call(rollup_env.url, "rollup_status")
    assert status["engineTransport"] == "ipc"
    ready = json.loads((d / "ready.json").read_text())
    node_log = (d / "logs" / "node.log").read_text(errors="replace")
    ports = _engine_http_ports(d)
    assert len(ports) >= 2, f"expected both engines' HTTP ports in their logs, got {ports}"
    published = {"rollup_status": json.dumps(status), "ready line": json.dumps(ready), "node log": node_log}
    allowed = {rollup_env.url, rollup_env.url.replace("http://", "ws://"), rollup_env.l1_url}
    for what, text in published.items():
        for url in URL_RE.findall(text):
            assert url.rstrip("/.,)") in allowed, f"{what} names a URL that is not the node's or L1's: {url}"
        for port in ports:
            assert not _names_port(text, port), f"{what} names engine port {port}"
    print(f"\nengines: IPC sockets {sorted(p.name for p in sock_dir.iterdir())} in {sock_dir} (dir 0700, "
          f"sockets 0600); their anvils' HTTP listeners on unpublished ports {sorted(ports)}; "
          f"rollup_status keys: {sorted(k for k in status if 'ngine' in k)}; ready line keys: {sorted(ready)}")


def test_http_engine_transport_is_explicit_and_reported(private_l1, rollup_node_factory, tmp_path) -> None:
    """The HTTP fallback runs only when asked for: reported in rollup_status, warned about in the log, and
    still publishes no engine URL."""
    node = rollup_node_factory(private_l1.url, l1_operator_key(), tmp_path / "node",
                               ("--engine-transport", "http"))
    status = rpc_call(node.url, "rollup_status")
    assert status["engineTransport"] == "http"
    assert not (tmp_path / "node" / "engines" / "l2-engine.ipc").exists()
    assert int(rpc_call(node.url, "eth_chainId"), 16) == 270  # the node works through its HTTP engines
    node_log = node.log_path.read_text(errors="replace")
    assert "engines reached over HTTP" in node_log
    ready = (tmp_path / "node" / "ready.json").read_text()
    for port in _engine_http_ports(tmp_path / "node"):
        for what, text in (("rollup_status", json.dumps(status)), ("ready line", ready), ("node log", node_log)):
            assert not _names_port(text, port), f"{what} names engine port {port}"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a probe as another uid")
def test_other_uid_cannot_connect(rollup_env) -> None:
    """root bypasses file modes, so the modes are checked by a probe running as uid 65534 (nobody)."""
    sock = rollup_env.data_dir / "engines" / "l2-engine.ipc"
    code = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\n"
            "except PermissionError:\n    print('EACCES')\nelse:\n    print('CONNECTED')\n")
    out = subprocess.run(["/usr/bin/python3", "-S", "-c", code, str(sock)], user=65534, group=65534,
                         capture_output=True, text=True, timeout=30, cwd="/")
    assert out.stdout.strip() == "EACCES", (out.stdout, out.stderr)


def test_ipc_client_batches_threads_and_engine_restart(tmp_path) -> None:
    eng = Engine(EngineConfig(), tmp_path / "logs", "e").start()
    try:
        reps = eng.rpc.batch_raw([("eth_chainId", []), ("eth_blockNumber", []), ("no_such_method", [])])
        assert reps[0]["result"] == hex(270) and reps[1]["result"] == "0x0" and "error" in reps[2]
        got, errors = [], []

        def worker() -> None:
            try:
                got.extend(eng.rpc.call("eth_chainId") for _ in range(50))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and got == [hex(270)] * 400
        eng.rpc.call("evm_mine", [])
        assert eng.rpc.call("eth_blockNumber") == "0x1"
        # an engine restarted on the same path: the client's connection is dead, it reconnects once
        old = eng.rpc
        eng.stop()
        eng.start()
        assert old.call("eth_blockNumber") == "0x0"  # the new engine (fresh chain), through the old client
    finally:
        eng.stop()


def test_live_socket_not_taken_over_and_long_path(tmp_path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 40)
    eng = Engine(EngineConfig(), deep / "logs", "e").start()
    try:
        assert len(os.fsencode(str(eng.ipc_path))) > 107  # longer than sockaddr_un.sun_path allows
        assert eng.rpc.call("eth_chainId") == hex(270)
        with pytest.raises(procs.ProcessError, match="already serves this socket"):
            Engine(EngineConfig(), deep / "logs", "e").start()
        assert eng.rpc.call("eth_chainId") == hex(270)  # still the first engine's socket
    finally:
        eng.stop()
