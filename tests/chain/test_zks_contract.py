"""Contract tests (unit tests: in-process fake JSON-RPC servers on 127.0.0.1, no chain, no anvil) of paper B's
harness against the response shapes real targets serve.

ZKsync's shapes are taken from matter-labs/zksync-era's own source:

* method names and result types: ``core/lib/web3_decl/src/namespaces/zks.rs`` (commit
  254c96ecff3be2cf135eea546eacf0201816e276): ``zks_L1BatchNumber`` -> ``U64`` (hex),
  ``zks_getL1BatchBlockRange(batch)`` -> ``Option<(U64, U64)>`` (``[first, last]`` hex or null),
  ``zks_getBlockDetails(n)`` -> ``Option<BlockDetails>``, ``zks_getL1BatchDetails(batch)`` ->
  ``Option<L1BatchDetails>``;
* field names (camelCase serde) of ``BlockDetails`` / ``L1BatchDetails`` / ``BlockDetailsBase``:
  ``core/lib/types/src/api/mod.rs`` (commit a39115c97d0871ebd51e956ee0ab9aaae17fd93a): ``l1BatchNumber``
  and ``operatorAddress`` are not ``Option`` (never null), times are ``DateTime<Utc>`` (RFC 3339 with
  "Z"), an ``L1BatchDetails`` is ``number`` + the flattened base: no first/last block fields;
  ``BaseSystemContractsHashes`` has no rename (``default_aa``);
* values: ``From<StorageBlockDetails> for api::BlockDetails`` in ``core/lib/dal/src/models/storage_block.rs``
  (commit 0169b1e56bd8b71538676a6446807ac49fe00a0b): status ``verified`` for block 0 or once executed;
  the DAL gives an unbatched block ``MAX(l1_batches.number) + 1``;
* block tags: ``BlockNumber``'s ``Deserialize`` in ``core/lib/types/src/api/mod.rs``: ``committed``,
  ``finalized``, ``latest``, ``l1_committed``, ``earliest``, ``pending``; older versions reject ``safe``
  (newer ones map it to ``L1Committed``), so a ZKsync target is polled with ``l1_committed``;
* aggregation: ZKsync's eth sender commits / proves / executes several consecutive batches in one L1 tx,
  so their ``commitTxHash`` (...) are equal.

anvil-zksync's shape (the issue's observation): ``zks_getBlockDetails`` with every commit/prove/execute field
null, ``zks_getL1BatchDetails`` not served. The OP-stack shape: no ``zks_*`` at all, ``safe`` and
``finalized`` block tags.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.chain import plots
from harness.chain.finality import FinalityTracker, NoSettlementData, parse_time
from harness.chain.l2_reads import batches_for_blocks, node_batching_config
from harness.chain.settlement import settlement_cost, txs_per_batch
from harness.rollup.finality import batch_details, block_details

NOT_FOUND = {"code": -32601, "message": "Method not found"}
OPERATOR = "0x" + "a1" * 20
H = {k: "0x" + c * 64 for k, c in (("C12", "c"), ("C3", "d"), ("P12", "e"), ("P3", "f"), ("E123", "9"))}


class FakeRpc:
    """A JSON-RPC 2.0 server (single requests and batches) on 127.0.0.1 with an OS-assigned port; ``handler``
    maps (method, params) to a result, or raises :class:`Err` for an error reply. Records every call."""

    class Err(Exception):
        def __init__(self, error: dict):
            self.error = error

    def __init__(self, handler: Callable[[str, list], Any]):
        self.handler = handler
        self.calls: list[tuple[str, list]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = [fake.one(r) for r in req] if isinstance(req, list) else fake.one(req)
                body = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def one(self, req: dict) -> dict:
        self.calls.append((req["method"], req.get("params") or []))
        try:
            return {"jsonrpc": "2.0", "id": req["id"], "result": self.handler(req["method"], req.get("params") or [])}
        except FakeRpc.Err as e:
            return {"jsonrpc": "2.0", "id": req["id"], "error": e.error}

    def __enter__(self) -> FakeRpc:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _num(x: Any) -> int:
    return int(x, 16) if isinstance(x, str) else int(x)


# -- a ZKsync chain: genesis batch 0 = block 0; batches 1-3 hold blocks 1-9; block 10 is not batched yet ------
BATCH_BLOCKS = {0: (0, 0), 1: (1, 3), 2: (4, 6), 3: (7, 9)}
BATCH_TXS = {0: 0, 1: 30, 2: 45, 3: 15}
#: batches 1 and 2 committed and proven in one L1 tx each, 1-3 executed in one (ZKsync's aggregation)
BATCH_L1 = {0: (None, None, None), 1: ("C12", "P12", "E123"), 2: ("C12", "P12", "E123"), 3: ("C3", "P3", "E123")}
L1_GAS = {"C12": 200_000, "C3": 120_000, "P12": 500_000, "P3": 400_000, "E123": 90_000}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def zksync_base(batch: int) -> dict[str, Any]:
    """``BlockDetailsBase`` as zksync-era serializes it for a block/batch of ``batch``."""
    c, p, e = BATCH_L1.get(batch, (None, None, None))
    t0 = 1_714_564_800.0 + 10 * batch
    return {
        "timestamp": int(t0), "l1TxCount": 0, "l2TxCount": BATCH_TXS.get(batch, 0), "rootHash": "0x" + "5a" * 32,
        "status": "verified" if (batch == 0 or e) else "sealed",
        "commitTxHash": H[c] if c else None, "committedAt": _iso(t0 + 1.25) if c else None,
        "commitChainId": 9 if c else None,
        "proveTxHash": H[p] if p else None, "provenAt": _iso(t0 + 2.5) if p else None,
        "proveChainId": 9 if p else None,
        "executeTxHash": H[e] if e else None, "executedAt": _iso(t0 + 3.75) if e else None,
        "executeChainId": 9 if e else None,
        "l1GasPrice": 1_000_000_000, "l2FairGasPrice": 100_000_000, "fairPubdataPrice": 13_000,
        "baseSystemContractsHashes": {"bootloader": "0x" + "01" * 32, "default_aa": "0x" + "02" * 32,
                                      "evm_emulator": None},
    }


def batch_of(block: int) -> int:
    for b, (lo, hi) in BATCH_BLOCKS.items():
        if lo <= block <= hi:
            return b
    return max(BATCH_BLOCKS) + 1  # the DAL's COALESCE(l1_batch_number, MAX(number) + 1)


def zksync_handler(method: str, params: list) -> Any:
    head = 10
    if method == "eth_blockNumber":
        return hex(head)
    if method == "eth_getBlockByNumber":
        tag = params[0]
        named = {"latest": head, "finalized": 9, "l1_committed": 9, "committed": head, "earliest": 0}
        if tag not in named and not tag.startswith("0x"):
            raise FakeRpc.Err({"code": -32602, "message": f"Invalid params: unknown variant `{tag}`"})
        n = named.get(tag, _num(tag) if tag.startswith("0x") else 0)
        return {"number": hex(n), "hash": "0x" + f"{n:064x}", "timestamp": hex(1_714_564_800 + n),
                "gasLimit": hex(2**32), "gasUsed": "0x0", "transactions": []}
    if method == "zks_L1BatchNumber":
        return hex(max(BATCH_BLOCKS))
    if method == "zks_getBlockDetails":
        n = _num(params[0])
        if n > head:
            return None
        b = batch_of(n)
        base = zksync_base(b)
        base.update({"l2TxCount": 5, "rootHash": "0x" + f"{n:064x}"})
        return {"number": n, "l1BatchNumber": b, **base, "operatorAddress": OPERATOR, "protocolVersion": "Version27"}
    if method == "zks_getL1BatchDetails":
        b = _num(params[0])
        return {"number": b, **zksync_base(b)} if b in BATCH_BLOCKS else None
    if method == "zks_getL1BatchBlockRange":
        b = _num(params[0])
        return [hex(x) for x in BATCH_BLOCKS[b]] if b in BATCH_BLOCKS else None
    raise FakeRpc.Err(NOT_FOUND)


def l1_handler(method: str, params: list) -> Any:
    if method == "eth_getTransactionReceipt":
        name = next(k for k, v in H.items() if v == params[0])
        return {"transactionHash": params[0], "status": "0x1", "gasUsed": hex(L1_GAS[name]), "blockNumber": "0x10"}
    raise FakeRpc.Err(NOT_FOUND)


def anvil_zksync_handler(method: str, params: list) -> Any:
    if method == "zks_getL1BatchDetails":
        raise FakeRpc.Err(NOT_FOUND)
    if method == "zks_getBlockDetails":
        d = zksync_handler(method, params)
        if d is not None:
            for k in ("commitTxHash", "committedAt", "proveTxHash", "provenAt", "executeTxHash", "executedAt",
                      "commitChainId", "proveChainId", "executeChainId"):
                d[k] = None
            d["status"] = "sealed"
        return d
    if method == "eth_getTransactionReceipt":
        return {"transactionHash": params[0], "status": "0x1", "blockNumber": "0x5", "gasUsed": "0x5208"}
    return zksync_handler(method, params)


def op_stack_handler(method: str, params: list) -> Any:
    if method.startswith("zks_"):
        raise FakeRpc.Err(NOT_FOUND)
    if method == "eth_getBlockByNumber" and params[0] in ("safe", "finalized"):
        n = {"safe": 8, "finalized": 5}[params[0]]
        return {"number": hex(n), "hash": "0x" + f"{n:064x}", "timestamp": hex(n), "gasLimit": "0x1",
                "gasUsed": "0x0", "transactions": []}
    if method == "eth_getBlockByNumber" and params[0] == "l1_committed":
        raise FakeRpc.Err({"code": -32602, "message": "invalid block tag"})
    return zksync_handler(method, params)


@pytest.fixture
def zksync() -> Iterator[FakeRpc]:
    with FakeRpc(zksync_handler) as f:
        yield f


@pytest.fixture
def l1() -> Iterator[FakeRpc]:
    with FakeRpc(l1_handler) as f:
        yield f


def test_zksync_shape_is_tracked_in_zks_mode_with_iso_times(zksync) -> None:
    """Contract (zksync-era BlockDetails): ISO-8601 "Z" times parse to the instants; the batch number comes
    from ``l1BatchNumber``; a ZKsync target has L1 settlement (zks_getL1BatchDetails served)."""
    with FinalityTracker(zksync.url, mode="auto", poll_s=0.05) as tr:
        assert tr.mode == "zks" and tr.no_settlement is None
        rec = tr.wait_blocks([5], timeout_s=5)[5]
    t0 = 1_714_564_800.0 + 20
    assert rec.batch == 2
    assert rec.times == {"committed": pytest.approx(t0 + 1.25), "proven": pytest.approx(t0 + 2.5),
                         "executed": pytest.approx(t0 + 3.75)}


def test_paper_b_reads_run_against_a_zksync_shaped_target_without_keyerror(zksync, l1) -> None:
    """Contract: the suite's batch reads use only what ZKsync serves (block ranges from
    zks_getL1BatchBlockRange, no firstBlock/lastBlock); a batch is charged its share of an L1 tx that carries
    several batches (equal tx hashes); the statistics and the B11 figure run on the result."""
    batches = batches_for_blocks(zksync.url, [2, 5, 8], l1.url)
    assert [b["number"] for b in batches] == [1, 2, 3]
    assert [b["l2_block_range"] for b in batches] == [[1, 3], [4, 6], [7, 9]]
    assert [b["l1_tx_batches"] for b in batches] == [{"commit": 2, "prove": 2, "execute": 3}] * 2 + [
        {"commit": 1, "prove": 1, "execute": 3}]
    assert batches[0]["l1_gas"] == {"commit": 100_000, "prove": 250_000, "execute": 30_000}
    assert batches[2]["l1_gas"] == {"commit": 120_000, "prove": 400_000, "execute": 30_000}
    assert all(b["timings_s"] is None for b in batches)  # rollup_batchTimings is the embedded node's only
    cost = settlement_cost(batches, l1_gas_per_swap=100_000, l1_gas_per_second=2_500_000)
    whole_txs = 200_000 + 120_000 + 500_000 + 400_000 + 90_000  # each L1 tx counted exactly once
    assert cost["amortized_l1_gas_per_tx"] == pytest.approx(whole_txs / (30 + 45 + 15))
    assert cost["max_batches_per_l1_tx_by_step"] == {"commit": 2, "prove": 2, "execute": 3}
    shape = txs_per_batch(batches)
    assert shape["blocks_per_batch_mean"] == 3 and shape["txs_per_batch_median"] == 30
    assert node_batching_config(zksync.url) is None  # no rollup_status on ZKsync
    fig = plots.batch_composition_figure([{"run_tx_count": 5}] * 9, batches, 9.0, 31.0)
    assert fig is not None
    assert not {m for m, _ in zksync.calls} - {"zks_getBlockDetails", "zks_getL1BatchDetails",
                                               "zks_getL1BatchBlockRange", "rollup_batchTimings", "rollup_status"}


def test_an_unbatched_block_gets_the_next_batch_which_is_not_sealed_yet(zksync) -> None:
    """Contract: ZKsync answers an unbatched block with the next batch number (never null); its details and
    range are null until sealed, which the reads report as not sealed yet (not a KeyError)."""
    with FinalityTracker(zksync.url, mode="zks", poll_s=0.05) as tr:
        assert tr.rpc.call("zks_getBlockDetails", [10])["l1BatchNumber"] == 4
    with pytest.raises(ValueError, match="not sealed yet"):
        batches_for_blocks(zksync.url, [10])


def test_tags_mode_on_a_zksync_target_polls_l1_committed_and_finalized(zksync) -> None:
    """Contract: older ZKsync rejects the ``safe`` tag (this fake does), so tags mode on a target that serves
    zks_L1BatchNumber polls ``l1_committed`` / ``finalized``."""
    with FinalityTracker(zksync.url, mode="tags", poll_s=0.05) as tr:
        recs = tr.wait_blocks([3, 9], timeout_s=5)
        assert tr.tag_names == {"safe": "l1_committed", "finalized": "finalized"}
    assert all(r.reached("safe") and r.reached("finalized") for r in recs.values())
    tags = {p[0] for m, p in zksync.calls if m == "eth_getBlockByNumber"}
    assert "safe" not in tags and {"l1_committed", "finalized"} <= tags


def test_op_stack_tags_target_is_tracked_with_safe_and_finalized() -> None:
    """Contract (OP-stack shape: no zks_*, ``safe``/``finalized`` tags): auto picks tags, polls ``safe``."""
    with FakeRpc(op_stack_handler) as op, FinalityTracker(op.url, mode="auto", poll_s=0.05) as tr:
        assert tr.mode == "tags" and tr.tag_names["safe"] == "safe" and tr.no_settlement is None
        recs = tr.wait_blocks([5, 7], timeout_s=5, until="safe")
        assert all(r.reached("safe") for r in recs.values())
        assert recs[5].reached("finalized") and not recs[7].reached("finalized")


def test_anvil_zksync_shape_is_classified_in_seconds_and_has_no_settlement() -> None:
    """Contract (anvil-zksync: zks_getBlockDetails with every L1 field null, no zks_getL1BatchDetails): the
    tracker says why at once and waiting for a settlement stage raises instead of polling to the timeout."""
    with FakeRpc(anvil_zksync_handler) as az, FinalityTracker(az.url, mode="auto", poll_s=0.05) as tr:
        t0 = time.monotonic()
        assert tr.mode == "zks"
        assert "anvil-zksync" in tr.no_settlement and "every commit/prove/execute field is null" in tr.no_settlement
        with pytest.raises(NoSettlementData, match="zks_getL1BatchDetails"):
            tr.track_txs([("0x" + "12" * 32, time.time())], timeout_s=600)
        assert time.monotonic() - t0 < 5


def test_embedded_node_views_carry_the_fields_the_harness_reads_with_zksync_types() -> None:
    """Contract: the embedded node's zks_getBlockDetails / zks_getL1BatchDetails (harness/rollup/finality.py)
    give every field paper B's harness reads, typed as ZKsync types them (numbers for numbers, ISO "Z"
    strings for times, l1BatchNumber and operatorAddress never null, block 0 verified)."""
    block = {"number": 7, "hash": "0xab", "timestamp": 100, "tx_hashes": ["0x1"], "gas_used": 1, "gas_limit": 2,
             "seen_at": 100.5, "batch": None}
    d = block_details(block, None, 4, OPERATOR)
    z = zksync_handler("zks_getBlockDetails", [7])
    read = ("number", "l1BatchNumber", "status", "operatorAddress", "l1TxCount", "l2TxCount", "rootHash",
            "timestamp", "commitTxHash", "committedAt", "proveTxHash", "provenAt", "executeTxHash", "executedAt")
    for k in read:
        assert k in d and k in z, k
        assert type(d[k]) is type(z[k]) or d[k] is None or z[k] is None, (k, d[k], z[k])
    assert d["l1BatchNumber"] == 4 and d["operatorAddress"] == OPERATOR and d["status"] == "sealed"
    g = block_details({**block, "number": 0}, None, 4, OPERATOR)
    assert g["l1BatchNumber"] == 0 and g["status"] == "verified"
    rec = {"number": 2, "first_block": 4, "last_block": 6, "tx_count": 9, "new_root": "0x01", "prev_root": "0x00",
           "data_hash": "0x02", "sealed_at": 101.0, "raw_bytes": 10, "compressed_bytes": 5, "compression_ratio": 2.0,
           "status": "executed", "first_block_timestamp": 99,
           "commit": {"tx_hash": "0xc", "at": 102.5, "gas_used": 1}}
    bd = batch_details(rec)
    zb = zksync_handler("zks_getL1BatchDetails", [2])
    for k in ("number", "status", "l2TxCount", "rootHash", "commitTxHash", "committedAt", "executeTxHash"):
        assert k in bd and k in zb, k
    assert bd["status"] == zb["status"] == "verified"
    assert parse_time(bd["committedAt"]) == pytest.approx(102.5) and bd["committedAt"].endswith("Z")
