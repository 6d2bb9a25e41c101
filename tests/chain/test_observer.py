"""The inclusion observer against a raw anvil (1 s blocks): newHeads over the WebSocket anvil serves on its
HTTP port sees every block; without a WebSocket, or after the connection drops, it polls and says why; a
push lost in transit (a lossy relay in front of anvil) is detected and the block fetched by number."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from harness.chain.accounts import DEFAULT_MNEMONIC
from harness.chain.anvil import CAST_BIN, Anvil
from harness.chain.loadgen import LoadConfig, run_load
from harness.chain.observe import BlockObserver, ObservationError
from harness.chain.rpc import Rpc, to_int, ws_url_for
from tests.chain.ws_relay import LossyWsRelay

pytestmark = [pytest.mark.chain, pytest.mark.slow]


@pytest.fixture(scope="module")
def anvil_1s(tmp_path_factory):
    a = Anvil(block_time=1, log_dir=tmp_path_factory.mktemp("anvil-observer")).start()
    try:
        yield a
    finally:
        a.stop()


def _wait_blocks(obs: BlockObserver, n: int, timeout_s: float = 30.0) -> None:
    """Until the observer recorded blocks start+1 .. start+n (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if obs.start_block + n in obs.blocks:
            return
        if obs.failure:
            raise AssertionError(obs.failure)
        time.sleep(0.05)
    raise AssertionError(f"observer saw {sorted(obs.blocks)} within {timeout_s} s, wanted {n} blocks")


def _contiguous(obs: BlockObserver) -> list[int]:
    """Every block after the start block, none skipped; each seen after its lower bound (prev_poll_s)."""
    nums = [b.number for b in obs.snapshot()]
    assert nums == list(range(obs.start_block + 1, obs.start_block + 1 + len(nums))), nums
    assert all(b.seen_uncertainty_s >= 0 for b in obs.snapshot()), [(b.number, b.seen_uncertainty_s, b.via)
                                                                    for b in obs.snapshot()]
    return nums


class _HttpOnly(BaseHTTPRequestHandler):
    """A plain HTTP server's handler: no WebSocket upgrade (answers 501), no log lines."""

    def log_message(self, *args: object) -> None:
        pass


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_anvil_serves_websocket_json_rpc_on_its_http_port(anvil_1s) -> None:
    """The harness's client and Foundry's cast (its own WebSocket client) both speak ws:// to anvil's port."""
    with Rpc(ws_url_for(anvil_1s.url)) as rpc:
        assert rpc.transport == "ws"
        assert to_int(rpc.call("eth_chainId")) == 31337
        head = to_int(rpc.call("eth_blockNumber"))
    if not CAST_BIN.is_file():
        pytest.fail(f"cast not found at {CAST_BIN}: run npm ci")
    out = subprocess.run([str(CAST_BIN), "block-number", "--rpc-url", ws_url_for(anvil_1s.url)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= head


def test_newheads_sees_every_block_on_anvil(anvil_1s) -> None:
    obs = BlockObserver(anvil_1s.url).start()
    try:
        _wait_blocks(obs, 4)
    finally:
        obs.stop()
    _contiguous(obs)
    o = obs.observation()
    assert o["mode"] == "newHeads" and o["fallback_reason"] is None, o
    assert o["blocks_by"] == {"newHeads": o["blocks"]} and o["gaps"] == 0, o
    assert o["pushes"] >= 4 and o["resolution_s"] is not None and o["resolution_s"] > 0, o
    # a pushed block's resolution is the connection's ping round trip at its push (one that a heartbeat's
    # eth_blockNumber read before its push arrived: the time since the heartbeat before)
    assert o["ping_rtt_s"]["min_s"] <= o["resolution_s"] <= o["ping_rtt_s"]["max_s"], o
    assert o["resolution_max_s"] <= 2 * obs.heartbeat_s + o["ping_rtt_s"]["max_s"], o
    assert 0.5 < o["push_spacing_s"]["p50_s"] < 2.0, o  # anvil's 1 s interval mining, as pushed


def test_no_websocket_falls_back_to_polling_and_says_why(anvil_1s) -> None:
    # a closed port (nothing listens), then a plain HTTP server that does not upgrade to WebSocket
    http_only = HTTPServer(("127.0.0.1", 0), _HttpOnly)
    t = threading.Thread(target=http_only.serve_forever, daemon=True)
    t.start()
    try:
        for ws in (f"ws://127.0.0.1:{_closed_port()}", f"ws://127.0.0.1:{http_only.server_address[1]}"):
            obs = BlockObserver(anvil_1s.url, ws_url=ws).start()
            try:
                _wait_blocks(obs, 2)
            finally:
                obs.stop()
            _contiguous(obs)
            o = obs.observation()
            assert o["mode"] == "poll" and o["blocks_by"] == {"poll": o["blocks"]}, o
            assert o["fallback_reason"].startswith(f"no WebSocket at {ws}"), o
            assert o["resolution_s"] >= obs.poll_s, o
            with pytest.raises(ObservationError, match="newHeads required"):
                BlockObserver(anvil_1s.url, ws_url=ws, mode="newHeads").start()
    finally:
        http_only.shutdown()
        http_only.server_close()


def test_dropped_connection_falls_back_to_polling_without_skipping_a_block(anvil_1s) -> None:
    obs = BlockObserver(anvil_1s.url).start()
    try:
        _wait_blocks(obs, 2)
        obs.drop_subscription_for_test()
        _wait_blocks(obs, 5)
    finally:
        obs.stop()
    _contiguous(obs)
    o = obs.observation()
    assert o["mode"] == "poll" and "connection dropped" in o["fallback_reason"], o
    assert o["blocks_by"].get("newHeads", 0) >= 2 and o["blocks_by"].get("poll", 0) >= 2, o
    assert o["gaps"] == 0, o


def test_lost_pushes_are_detected_counted_and_fetched(anvil_1s) -> None:
    """The relay loses the push of block start+2 (found by the next push's number) and every push from
    start+5 on (no later push: found by the heartbeat's eth_blockNumber)."""
    base: list[int] = []

    def drop(n: int) -> bool:
        return bool(base) and (n == base[0] + 2 or n >= base[0] + 5)

    relay = LossyWsRelay(ws_url_for(anvil_1s.url), drop)
    try:
        obs = BlockObserver(anvil_1s.url, ws_url=relay.url)
        obs.start()
        base.append(obs.start_block)
        try:
            _wait_blocks(obs, 7)
        finally:
            obs.stop()
    finally:
        relay.close()
    _contiguous(obs)
    o = obs.observation()
    assert o["mode"] == "newHeads", o
    want = [n for n in relay.dropped if n <= max(obs.blocks)]
    assert sorted(obs.gaps) == sorted(want) and o["gaps_all_blocks"] == len(want), (obs.gaps, relay.dropped)
    assert o["gaps_never_pushed"] == sorted(want)[:20] and o["late_pushes"] == 0, o  # lost, not late
    assert {base[0] + 2, base[0] + 5, base[0] + 6, base[0] + 7} <= set(obs.gaps), obs.gaps
    assert all(obs.blocks[n].via == "gap" for n in obs.gaps)
    # a heartbeat-found block's time: the heartbeat that first read it, resolution <= grace + heartbeats
    tail = [obs.blocks[n] for n in obs.gaps if n >= base[0] + 5]
    assert all(b.seen_uncertainty_s <= obs.gap_grace_s + 4 * obs.heartbeat_s for b in tail), \
        [(b.number, b.seen_uncertainty_s) for b in tail]
    assert all(obs.blocks[n].via == "newHeads" for n in obs.blocks if n not in obs.gaps)


@pytest.mark.xdist_group("load")
def test_load_run_on_anvil_records_newheads_observation(anvil_1s) -> None:
    """A short transfer run (anvil's funded accounts 0..5): every block of the run seen by its push."""
    cfg = LoadConfig(workload="transfer", instances=2, accounts_per_instance=3, txs_per_account=4,
                     send_mode="single", account_base=0, start_delay_s=0.5)
    res = run_load(anvil_1s.url, cfg, DEFAULT_MNEMONIC)  # strict: no missing tx, every run block seen in time
    o = res.metrics["observation"]
    run_blocks = {t.block_number for t in res.txs if t.block_number is not None}
    assert o["mode"] == "newHeads" and o["fallback_reason"] is None and o["gaps"] == 0, o
    assert o["blocks"] == len(run_blocks) and o["blocks_by"] == {"newHeads": len(run_blocks)}, o
    seen = {b.number: b for b in res.blocks}
    assert all(seen[n].via == "newHeads" for n in run_blocks)
    nums = sorted(seen)
    assert nums == list(range(nums[0], nums[-1] + 1)), nums
    assert res.metrics["blocks_unseen_by_observer"] == 0


def test_cli_observer_options(capsys) -> None:
    """``--observe`` and ``--ws-url`` reach the config; a non-ws ``--ws-url`` is a usage error (exit 2)."""
    from harness.chain.cli import build_parser, main

    args = build_parser().parse_args(["--observe", "poll", "--ws-url", "ws://127.0.0.1:9"])
    assert (args.observe, args.ws_url) == ("poll", "ws://127.0.0.1:9")
    assert main(["--ws-url", "http://127.0.0.1:9"]) == 2
    assert "--ws-url must be ws(s)://" in capsys.readouterr().err
    with pytest.raises(ValueError, match="observe must be"):
        LoadConfig(observe="push").validate()
