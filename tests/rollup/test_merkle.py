"""Sparse Merkle tree: incremental == from-scratch, proofs verify, persistence round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.rollup.merkle import ZERO32, SparseMerkleTree, keccak, state_key
from harness.rollup.store import NodeDb

keys = st.binary(min_size=32, max_size=32)
values = st.one_of(st.just(ZERO32), st.binary(min_size=32, max_size=32))
DEPTH = 16  # small depth: properties are depth-independent, and hypothesis then also finds collisions


def _final(ops: list[dict[bytes, bytes]]) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for batch in ops:
        out.update(batch)
    return {k: v for k, v in out.items() if v != ZERO32}


def _no_collisions(leaves: dict[bytes, bytes], depth: int) -> bool:
    idx = [int.from_bytes(k, "big") >> (256 - depth) for k in leaves]
    return len(set(idx)) == len(idx)


def test_empty_root_is_default_and_single_leaf_root_is_recomputable() -> None:
    t = SparseMerkleTree(8)
    assert t.root == t.defaults[8]
    k, v = keccak(b"k"), keccak(b"v")
    t.update({k: v})
    h = SparseMerkleTree.leaf_hash(k, v)
    idx = t.index_of(k)
    for level in range(8):
        sib = t.defaults[level]
        h = keccak(h + sib) if idx & 1 == 0 else keccak(sib + h)
        idx >>= 1
    assert t.root == h


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(keys, values, max_size=12), min_size=1, max_size=6))
def test_incremental_updates_equal_from_scratch(ops: list[dict[bytes, bytes]]) -> None:
    final = _final(ops)
    t = SparseMerkleTree(DEPTH)
    try:
        for b in ops:
            t.update(b)
    except ValueError as e:  # two live keys on one leaf index at this small depth: must be refused, loudly
        assert "collision" in str(e)
        return
    fresh = SparseMerkleTree.from_leaves(final, DEPTH)
    assert t.root == fresh.root
    assert t.leaves == final
    assert t.nodes == fresh.nodes  # no stale nodes left behind by deletions


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(keys, st.binary(min_size=32, max_size=32).filter(lambda v: v != ZERO32), max_size=20),
       keys)
def test_inclusion_and_exclusion_proofs_verify(leaves: dict[bytes, bytes], other: bytes) -> None:
    if not _no_collisions(leaves, DEPTH):
        return
    t = SparseMerkleTree.from_leaves(leaves, DEPTH)
    for k, v in leaves.items():
        p = t.prove(k)
        assert p.value == v
        assert SparseMerkleTree.verify(t.root, p, DEPTH)
        forged = type(p)(p.key, keccak(v), p.siblings)
        assert not SparseMerkleTree.verify(t.root, forged, DEPTH)
    if other not in leaves and t.index_of(other) not in {t.index_of(k) for k in leaves}:
        p = t.prove(other)
        assert p.value == ZERO32 and SparseMerkleTree.verify(t.root, p, DEPTH)


def test_deleting_everything_returns_to_the_empty_root() -> None:
    t = SparseMerkleTree(64)
    ks = [keccak(bytes([i])) for i in range(50)]
    t.update({k: keccak(k) for k in ks})
    assert t.root != t.defaults[64]
    t.update({k: ZERO32 for k in ks})
    assert t.root == t.defaults[64] and not t.nodes and not t.leaves


def test_persisted_tree_reloads_to_same_root(tmp_path) -> None:
    db = NodeDb(tmp_path / "n.sqlite")
    t = SparseMerkleTree(64)
    b1 = {state_key("0x" + "11" * 20, 0): (5).to_bytes(32, "big"), keccak(b"a"): keccak(b"b")}
    ch = t.update(b1)
    db.seal_batch({"number": 1, "first_block": 1, "last_block": 1}, ch, b1)
    b2 = {keccak(b"a"): ZERO32, keccak(b"c"): keccak(b"d")}
    ch = t.update(b2)
    db.seal_batch({"number": 2, "first_block": 2, "last_block": 2}, ch, b2)
    nodes, leaves = db.load_tree()
    db.close()
    again = SparseMerkleTree(64, nodes, leaves)
    assert again.root == t.root and again.leaves == t.leaves


def test_bad_inputs_are_refused() -> None:
    t = SparseMerkleTree(8)
    with pytest.raises(ValueError, match="32 bytes"):
        t.update({b"short": ZERO32})
    with pytest.raises(ValueError, match="32 bytes"):
        t.update({keccak(b"k"): b"\x01"})
    with pytest.raises(ValueError, match="depth"):
        SparseMerkleTree(0)
    with pytest.raises(ValueError, match="20 bytes"):
        state_key("0x1234", 0)


@given(st.dictionaries(keys, values, max_size=10), st.dictionaries(keys, values, max_size=10))
def test_revert_undoes_an_update_exactly(before: dict[bytes, bytes], change: dict[bytes, bytes]) -> None:
    """update(..., undo) then revert(undo) restores every node, leaf and index owner (a failed seal)."""
    from harness.rollup.merkle import TreeUndo

    t = SparseMerkleTree(DEPTH)
    try:
        t.update(before)
    except ValueError:
        return  # a collision in the starting state: not what this property is about
    snap = (t.root, dict(t.nodes), dict(t.leaves), dict(t._index_owner))
    undo = TreeUndo()
    try:
        t.update(change, undo=undo)
    except ValueError:
        assert (t.root, t.nodes, t.leaves, t._index_owner) == snap  # validation happens before mutation
        return
    t.revert(undo)
    assert (t.root, t.nodes, t.leaves, t._index_owner) == snap
    t.update(change)  # and the tree still works afterwards


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_keccak_is_ethereums_keccak_256(data: bytes) -> None:
    """The tree's keccak (safe-pysha3) gives pycryptodome's Keccak-256 digest (Ethereum's, not SHA3-256)."""
    from Crypto.Hash import keccak as reference

    assert keccak(data) == reference.new(digest_bits=256, data=data).digest()
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
