"""The prover re-executes a published batch on its own engine and refuses one whose data does not reproduce;
a failed seal leaves the in-memory Merkle tree where the database is (transactional seal).

These tests drive the pipeline's stages directly on real engines (no L1): ``_replay_on_prover`` is given
the batch as published (data + roots). That the prover takes the batch from L1, not from its local copy,
is tested at node level in test_node_published_data.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account
from harness.rollup.batcher import Pipeline, ProofRefused
from harness.rollup.compress import BatchData, compress, decompress
from harness.rollup.config import NodeConfig
from harness.rollup.engine import Engine, EngineConfig
from harness.rollup.merkle import SparseMerkleTree, keccak
from harness.rollup.state_diff import genesis_leaves
from harness.rollup.store import NodeDb

from ._l2tx import signed_transfer

pytestmark = [pytest.mark.chain]


@dataclass(frozen=True)
class Published:
    """What the prover gets from L1 (see harness.rollup.l1.PublishedBatch)."""

    batch_number: int
    prev_root: bytes
    new_root: bytes
    data: bytes


def _transfers(n: int, start: int = 0) -> list[bytes]:
    key = derive_account(DEFAULT_MNEMONIC, 3).key
    return [bytes(signed_transfer(key, i, value=5).raw_transaction) for i in range(start, start + n)]


@pytest.fixture
def chain(tmp_path):
    """An L2 engine with two mined blocks of transfers, recorded in a NodeDb; a Pipeline on them."""
    cfg = NodeConfig(data_dir=tmp_path / "node")
    l2 = Engine(EngineConfig(), tmp_path / "logs", "l2").start()
    db = NodeDb(cfg.data_dir / "node.sqlite")
    try:
        genesis_ts = int(l2.genesis()["timestamp"], 16)
        raw_by_hash = {}
        for blk_no, raws in ((1, _transfers(4)), (2, _transfers(3, start=4))):
            for r in raws:
                l2.rpc.call("eth_sendRawTransaction", ["0x" + r.hex()])
                raw_by_hash["0x" + keccak(r).hex()] = r
            l2.rpc.call("evm_mine", [])
            blk = l2.rpc.call("eth_getBlockByNumber", [hex(blk_no), False])
            db.add_block({"number": blk_no, "hash": blk["hash"], "timestamp": int(blk["timestamp"], 16),
                          "tx_hashes": [h.lower() for h in blk["transactions"]], "gas_used": 0,
                          "gas_limit": 1, "seen_at": 0.0})
        gen = genesis_leaves(l2.rpc, l2.rpc.call("eth_accounts"))
        tree = SparseMerkleTree(cfg.tree_depth)
        tree.update(gen)

        def prover_engine() -> Engine:
            return Engine(EngineConfig(genesis_timestamp=genesis_ts), tmp_path / "logs", "prover").start()

        p = Pipeline(cfg, db, raw_by_hash, l2.rpc, tree, prover_engine, gen, l1=None, prover=None)
        yield p, db, gen, prover_engine
    finally:
        db.close()
        l2.stop()


def _published(p: Pipeline, rec: dict, data: bytes | None = None) -> Published:
    return Published(rec["number"], bytes.fromhex(rec["prev_root"][2:]), bytes.fromhex(rec["new_root"][2:]),
                     p.blob(rec["number"]) if data is None else data)


@pytest.mark.parametrize("tamper", [None, "diff", "tx_order", "garbage", "other_batch"])
def test_prover_reexecutes_and_refuses_mismatches(chain, tamper: str | None) -> None:
    p, db, gen, prover_engine = chain
    rec = p.seal(db.blocks(1, 1))
    data = p.blob(1)
    if tamper == "diff":  # publish a state diff the txs do not produce
        bd = BatchData.decode(decompress(data))
        k, v = bd.diff[0]
        bd.diff[0] = (k, keccak(v))
        data = compress(bd.encode())
    elif tamper == "tx_order":
        bd = BatchData.decode(decompress(data))
        n, ts, txs = bd.blocks[0]
        bd.blocks[0] = (n, ts, list(reversed(txs)))
        data = compress(bd.encode())
    elif tamper == "garbage":
        data = b"\x01not zlib at all"
    elif tamper == "other_batch":
        bd = BatchData.decode(decompress(data))
        data = compress(BatchData(7, bd.blocks, bd.diff).encode())
    p.prover_engine = prover_engine()
    ptree = SparseMerkleTree(p.cfg.tree_depth)
    ptree.update(gen)
    try:
        if tamper is None:
            p._replay_on_prover(_published(p, rec, data), ptree)
            assert "0x" + ptree.root.hex() == rec["new_root"]
        else:
            with pytest.raises(ProofRefused, match="published on L1|does not decode|batch 7"):
                p._replay_on_prover(_published(p, rec, data), ptree)
    finally:
        p.prover_engine.stop()


def test_failed_seal_leaves_the_tree_at_the_database_root(chain) -> None:
    """A seal that fails at its database commit (a real SQLite write failure: the connection made
    read-only) reverts the in-memory tree and removes the batch file; the retried seal then produces the
    same batch a never-failed node would, and later batches chain on it."""
    p, db, gen, prover_engine = chain
    root_before = p.tree.root
    db.conn.execute("PRAGMA query_only=1")
    with pytest.raises(Exception, match="readonly|read-only"):
        p.seal(db.blocks(1, 1))
    assert p.tree.root == root_before, "the tree is ahead of the database after a failed seal"
    assert not (p.blob_dir / "1.bin").exists() and db.batch(1) is None and not p.batches
    db.conn.execute("PRAGMA query_only=0")
    rec1 = p.seal(db.blocks(1, 1))
    rec2 = p.seal(db.blocks(2, 2))
    assert rec1["prev_root"] == "0x" + root_before.hex() and rec2["prev_root"] == rec1["new_root"]
    # the persisted tree reloads to the same root, and the prover agrees with both batches
    nodes, leaves = db.load_tree()
    assert SparseMerkleTree(p.cfg.tree_depth, nodes, leaves).root == p.tree.root
    p.prover_engine = prover_engine()
    ptree = SparseMerkleTree(p.cfg.tree_depth)
    ptree.update(gen)
    try:
        for rec in (rec1, rec2):
            p._replay_on_prover(_published(p, rec), ptree)
    finally:
        p.prover_engine.stop()
    assert set(rec1["timings"]) >= {"seal", "state_diff", "tree", "compress", "persist"}
    assert db.batch(1)["timings"]["persist"] > 0
