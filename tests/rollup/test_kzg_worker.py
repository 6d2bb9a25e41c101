"""The node's KZG child process (harness.rollup.kzg_worker): same values as in-process, own process group,
and a dead worker falls back to in-process computation instead of failing a commit."""

from __future__ import annotations

import os

from eth_account import Account

from harness.rollup import blobs
from harness.rollup.kzg_worker import KzgWorker
from harness.rollup.stage_clock import StageClock

TX = {"type": 3, "chainId": 1, "nonce": 0, "gas": 100_000, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 1,
      "maxFeePerBlobGas": 10, "to": "0x" + "11" * 20, "value": 0, "data": b""}
KEY = "0x" + "22" * 32


def test_worker_matches_in_process_and_falls_back_when_dead(tmp_path) -> None:
    data = os.urandom(5_000)
    bl = blobs.encode_blobs(data)
    w = KzgWorker(tmp_path / "kzg.log")
    try:
        assert w.start() > 0
        assert os.getpgid(w.proc.pid) == w.proc.pid != os.getpgid(0)  # its own process group
        blobs.use_kzg_worker(w)
        assert blobs.blob_versioned_hashes(bl) == blobs.local_blob_versioned_hashes(bl)
        raw = blobs.sign_blob_tx(KEY, TX, bl)
        assert raw == bytes(Account.from_key(KEY).sign_transaction(TX, blobs=bl).raw_transaction)
        assert w.stats()["calls"] == 2
        w.stop()  # dead worker: same values, computed here
        assert blobs.blob_versioned_hashes(bl) == blobs.local_blob_versioned_hashes(bl)
    finally:
        blobs.release_kzg_worker(w)
        w.stop()


def test_stage_clock_summary() -> None:
    c = StageClock(keep=100)
    for i in range(1, 201):
        c.record("x", i / 1e3)
    c.count("n", 3)
    s = c.summary()
    assert s["x"]["count"] == 200 and s["x"]["window"] == 100 and s["x"]["max_ms"] == 200.0
    assert 145 <= s["x"]["p50_ms"] <= 155 and s["n"]["p50"] == 3
    c.reset()
    assert c.summary() == {}
