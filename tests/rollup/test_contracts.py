"""Rollup.sol + the generated Groth16 verifier against a real anvil, through harness.rollup.l1.

One anvil per module; every test deploys its own Rollup (two transactions, compile cached) so tests do
not depend on each other's batch counters. Proofs come from the real (cached) Groth16 setup.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eth_account import Account

from harness.chain.anvil import DEFAULT_MNEMONIC, Anvil
from harness.report.attach import attach_table
from harness.rollup import solc
from harness.rollup.blobs import (
    blob_data_hash,
    cache_kzg_trusted_setup,
    data_hash,
    decode_blobs,
    encode_blobs,
)
from harness.rollup.l1 import RollupL1, RollupRevert
from harness.rollup.zk.prover import Groth16Prover, Proof, batch_commitment

pytestmark = [pytest.mark.chain]

Account.enable_unaudited_hdwallet_features()
KEYS = [
    Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
    for i in range(10)
]
DEPLOYER, SEQUENCER, PROVER, STRANGER = KEYS[:4]
NON_PROVER = KEYS[9]  # anvil dev account 9: funded, neither sequencer nor prover
SEQUENCER_ADDRESS = Account.from_key(SEQUENCER).address
PROVER_ADDRESS = Account.from_key(PROVER).address
GENESIS = bytes.fromhex("11" * 32)


def root(i: int) -> bytes:
    """A distinct, deterministic 32-byte state root."""
    return i.to_bytes(32, "big")


@pytest.fixture(scope="module")
def anvil():
    with Anvil() as node:
        yield node


@pytest.fixture(scope="module")
def prover() -> Groth16Prover:
    return Groth16Prover()


def deploy(anvil, genesis: bytes = GENESIS) -> RollupL1:
    """A fresh Rollup: sequencer = account 1, prover = account 2."""
    return RollupL1.deploy(anvil.url, DEPLOYER, SEQUENCER_ADDRESS, genesis, prover_address=PROVER_ADDRESS)


def prove_for(prover: Groth16Prover, rollup: RollupL1, n: int, prev: bytes, new: bytes, dh: bytes) -> Proof:
    """A proof bound to ``rollup``'s deployment (its L1 chain id and address)."""
    return prover.prove(n, prev, new, dh, chain_id=rollup.chain_id, rollup_address=rollup.address)


@pytest.fixture
def rollup(anvil) -> RollupL1:
    return deploy(anvil)


class _Batch1(dict):
    """Batch 1's data and new root; its proof (bound to the test's deployment) is made on first use."""

    def __init__(self, prover: Groth16Prover, rollup: RollupL1) -> None:
        data = bytes(range(100))
        super().__init__(data=data, new=root(1))
        self._make = lambda: prove_for(prover, rollup, 1, GENESIS, root(1), data_hash(data))

    def __missing__(self, key: str):
        if key != "proof":
            raise KeyError(key)
        self["proof"] = self._make()
        return self["proof"]


@pytest.fixture
def batch1(prover, rollup) -> _Batch1:
    """Batch 1: genesis -> root(1) over 100 bytes of data, with its proof for this test's ``rollup``."""
    return _Batch1(prover, rollup)


def test_deploy(rollup: RollupL1, anvil) -> None:
    assert rollup.w3.eth.get_code(rollup.address)
    assert rollup.w3.eth.get_code(rollup.verifier_address)
    assert rollup.sequencer() == SEQUENCER_ADDRESS
    assert rollup.prover() == PROVER_ADDRESS
    assert rollup.genesis_root() == GENESIS
    assert rollup.totals() == {"committed": 0, "proven": 0, "executed": 0}
    again = RollupL1.attach(anvil.url, rollup.address)
    assert again.verifier_address == rollup.verifier_address
    assert again.totals() == rollup.totals()


def test_default_prover_is_the_sequencer(anvil) -> None:
    """The node deploys with one L1 key: without prover_address the sequencer is also the prover."""
    r = RollupL1.deploy(anvil.url, DEPLOYER, SEQUENCER_ADDRESS, GENESIS)
    assert r.prover() == r.sequencer() == SEQUENCER_ADDRESS


def test_commitment_matches_contract(rollup: RollupL1) -> None:
    f = rollup.contract.functions
    assert rollup.chain_id == rollup.w3.eth.chain_id
    for n, a, b, d in [(1, GENESIS, root(1), root(2)), (2**64 + 3, root(5), root(5), bytes(32))]:
        on_chain = f.commitmentOf(n, a, b, d).call()
        assert on_chain == batch_commitment(n, a, b, d, chain_id=rollup.chain_id, rollup_address=rollup.address)
        assert on_chain == f.commitmentFor(rollup.chain_id, rollup.address, n, a, b, d).call()
        assert on_chain < 2**253
        # another chain id or another contract address gives another public input
        assert on_chain != f.commitmentFor(rollup.chain_id + 1, rollup.address, n, a, b, d).call()
        assert on_chain != f.commitmentFor(rollup.chain_id, SEQUENCER_ADDRESS, n, a, b, d).call()


def test_commit_prove_execute_in_order(rollup: RollupL1, prover: Groth16Prover, batch1) -> None:
    c = rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    assert c.status == 1 and c.gas_used > 21_000 and c.tx_hash.startswith("0x")
    (ev,) = c.events
    assert ev["event"] == "BlockCommit" and ev["batchNumber"] == 1
    assert ev["dataHash"] == data_hash(batch1["data"]).hex() and ev["dataLength"] == len(batch1["data"])
    assert rollup.batch_commitment(1) == batch1["proof"].commitment

    p = rollup.prove_batch(PROVER, 1, batch1["proof"])
    assert [e["event"] for e in p.events] == ["BlockProven"]
    assert p.events[0]["commitment"] == batch1["proof"].commitment
    e = rollup.execute_batch(PROVER, 1)
    assert [x["event"] for x in e.events] == ["BlockExecuted"]
    assert e.events[0]["newRoot"] == batch1["new"].hex()

    # a second batch chains on the first
    data2 = b"\x00" * 10 + b"\xff" * 10
    rollup.commit_batch(SEQUENCER, 2, batch1["new"], root(2), data2)
    rollup.prove_batch(PROVER, 2, prove_for(prover, rollup, 2, batch1["new"], root(2), data_hash(data2)))
    rollup.execute_batch(PROVER, 2)
    assert rollup.totals() == {"committed": 2, "proven": 2, "executed": 2}
    rec = rollup.batch(2)
    assert rec["prev_root"] == batch1["new"] and rec["new_root"] == root(2)
    assert rec["data_hash"] == data_hash(data2) and rec["data_length"] == 20
    assert rec["committed_block"] < rec["proven_block"] < rec["executed_block"]  # automine: 1 tx per block
    assert rec["committed_at"] <= rec["proven_at"] <= rec["executed_at"]


def _tampered(proof: Proof, **changes) -> Proof:
    fields = {
        f: getattr(proof, f)
        for f in (
            "a",
            "b",
            "c",
            "public_signals",
            "seconds",
            "prove_seconds",
            "batch_number",
            "snarkjs_proof",
        )
    }
    fields.update(changes)
    return Proof(**fields)


@pytest.mark.parametrize("how", ["a_plus_1", "c_swapped", "b_unswapped", "a_negated"])
def test_tampered_proof_rejected(rollup: RollupL1, batch1, how: str) -> None:
    rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    good: Proof = batch1["proof"]
    q = 21888242871839275222246405745257275088696311157297823662689037894645226208583  # BN254 base field
    bad = {
        "a_plus_1": _tampered(good, a=(good.a[0] + 1, good.a[1])),  # not on the curve
        "c_swapped": _tampered(good, c=(good.c[1], good.c[0])),
        "b_unswapped": _tampered(good, b=((good.b[0][1], good.b[0][0]), (good.b[1][1], good.b[1][0]))),
        "a_negated": _tampered(good, a=(good.a[0], q - good.a[1])),  # on the curve, wrong point
    }[how]
    with pytest.raises(RollupRevert, match="invalid proof"):
        rollup.prove_batch(PROVER, 1, bad)
    assert rollup.totals()["proven"] == 0
    rollup.prove_batch(PROVER, 1, good)  # the untampered proof still works
    assert rollup.totals()["proven"] == 1


def test_proof_for_other_root_rejected(rollup: RollupL1, prover: Groth16Prover, batch1) -> None:
    rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    d = data_hash(batch1["data"])
    for wrong in (
        prove_for(prover, rollup, 1, GENESIS, root(99), d),
        prove_for(prover, rollup, 1, root(98), batch1["new"], d),
        prove_for(prover, rollup, 1, GENESIS, batch1["new"], data_hash(batch1["data"] + b"!")),
    ):
        with pytest.raises(RollupRevert, match="invalid proof"):
            rollup.prove_batch(PROVER, 1, wrong)
    assert rollup.totals()["proven"] == 0


def test_proof_not_replayable_for_next_batch(rollup: RollupL1, prover: Groth16Prover) -> None:
    """No-op batches with identical roots and data: only the batch number tells them apart."""
    data = b"same data"
    rollup.commit_batch(SEQUENCER, 1, GENESIS, GENESIS, data)
    rollup.commit_batch(SEQUENCER, 2, GENESIS, GENESIS, data)
    proof1 = prove_for(prover, rollup, 1, GENESIS, GENESIS, data_hash(data))
    rollup.prove_batch(PROVER, 1, proof1)
    with pytest.raises(RollupRevert, match="invalid proof"):
        rollup.prove_batch(PROVER, 2, proof1)
    with pytest.raises(RollupRevert, match="out of order"):  # and it cannot prove batch 1 twice
        rollup.prove_batch(PROVER, 1, proof1)
    rollup.prove_batch(PROVER, 2, prove_for(prover, rollup, 2, GENESIS, GENESIS, data_hash(data)))
    assert rollup.totals() == {"committed": 2, "proven": 2, "executed": 0}


def test_proof_not_replayable_on_another_deployment_with_other_genesis(anvil, prover: Groth16Prover) -> None:
    """Even bound to the right deployment, a proof over another genesis root fails."""
    other = deploy(anvil, genesis=root(7))
    data = bytes(range(100))
    other.commit_batch(SEQUENCER, 1, root(7), root(1), data)
    with pytest.raises(RollupRevert, match="invalid proof"):
        other.prove_batch(PROVER, 1, prove_for(prover, other, 1, GENESIS, root(1), data_hash(data)))


def test_proof_replayed_on_second_deployment_reverts(anvil, prover: Groth16Prover) -> None:
    """Two deployments with the same genesis and the same batch: each accepts only its own proof."""
    first, second = deploy(anvil), deploy(anvil)
    assert first.address != second.address and first.chain_id == second.chain_id
    data = bytes(range(100))
    for r in (first, second):
        r.commit_batch(SEQUENCER, 1, GENESIS, root(1), data)
    proof_first = prove_for(prover, first, 1, GENESIS, root(1), data_hash(data))
    with pytest.raises(RollupRevert, match="invalid proof"):
        second.prove_batch(PROVER, 1, proof_first)
    # nor does a proof for the same address on another chain id verify here
    other_chain = prover.prove(1, GENESIS, root(1), data_hash(data), chain_id=second.chain_id + 1,
                               rollup_address=second.address)
    with pytest.raises(RollupRevert, match="invalid proof"):
        second.prove_batch(PROVER, 1, other_chain)
    assert second.totals()["proven"] == 0
    first.prove_batch(PROVER, 1, proof_first)  # the proof is valid where it belongs
    second.prove_batch(PROVER, 1, prove_for(prover, second, 1, GENESIS, root(1), data_hash(data)))
    assert first.totals()["proven"] == second.totals()["proven"] == 1


def test_prove_and_execute_only_by_prover_or_sequencer(rollup: RollupL1, prover: Groth16Prover, batch1) -> None:
    """A valid proof sent by anyone else (anvil dev account 9, the deployer) reverts; so does executeBatch."""
    rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    reason = "Rollup: caller is not the prover or sequencer"
    gas = []  # the rejected txs are mined (status 0): what a stranger pays to be refused
    for who, key in (("account 9", NON_PROVER), ("deployer", DEPLOYER)):
        with pytest.raises(RollupRevert, match="caller is not the prover or sequencer") as err:
            rollup.prove_batch(key, 1, batch1["proof"])
        assert err.value.tx_hash and err.value.reason == reason
        gas.append({"step": "proveBatch", "sender": who, "accepted": False, "gas_used": err.value.gas_used})
    assert rollup.totals()["proven"] == 0
    p = rollup.prove_batch(PROVER, 1, batch1["proof"])
    gas.append({"step": "proveBatch", "sender": "prover", "accepted": True, "gas_used": p.gas_used})
    for who, key in (("account 9", NON_PROVER), ("deployer", DEPLOYER)):
        with pytest.raises(RollupRevert, match="caller is not the prover or sequencer") as err:
            rollup.execute_batch(key, 1)
        assert err.value.tx_hash and err.value.reason == reason
        gas.append({"step": "executeBatch", "sender": who, "accepted": False, "gas_used": err.value.gas_used})
    assert rollup.totals() == {"committed": 1, "proven": 1, "executed": 0}
    e = rollup.execute_batch(PROVER, 1)
    gas.append({"step": "executeBatch", "sender": "prover", "accepted": True, "gas_used": e.gas_used})
    attach_table("rollup_caller_checks_gas.csv", gas)
    # the sequencer may prove and execute too (the node's one key does all three by default)
    data2 = b"batch two"
    rollup.commit_batch(SEQUENCER, 2, batch1["new"], root(2), data2)
    rollup.prove_batch(SEQUENCER, 2, prove_for(prover, rollup, 2, batch1["new"], root(2), data_hash(data2)))
    rollup.execute_batch(SEQUENCER, 2)
    assert rollup.totals() == {"committed": 2, "proven": 2, "executed": 2}


def test_commit_from_non_sequencer_rejected(rollup: RollupL1, batch1) -> None:
    for key in (STRANGER, DEPLOYER, PROVER):
        with pytest.raises(RollupRevert, match="caller is not the sequencer") as err:
            rollup.commit_batch(key, 1, GENESIS, batch1["new"], batch1["data"])
        assert err.value.tx_hash and err.value.reason == "Rollup: caller is not the sequencer"
    assert rollup.totals()["committed"] == 0


def test_execute_before_prove_rejected(rollup: RollupL1, batch1) -> None:
    with pytest.raises(RollupRevert, match="not proven"):
        rollup.execute_batch(PROVER, 1)  # not even committed
    rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    with pytest.raises(RollupRevert, match="not proven"):
        rollup.execute_batch(PROVER, 1)
    with pytest.raises(RollupRevert, match="out of order"):
        rollup.execute_batch(PROVER, 2)
    assert rollup.totals() == {"committed": 1, "proven": 0, "executed": 0}


def test_prove_before_commit_rejected(rollup: RollupL1, batch1) -> None:
    with pytest.raises(RollupRevert, match="not committed"):
        rollup.prove_batch(PROVER, 1, batch1["proof"])


def test_double_commit_rejected(rollup: RollupL1, batch1) -> None:
    rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    with pytest.raises(RollupRevert, match="already committed"):
        rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    with pytest.raises(RollupRevert, match="already committed"):
        rollup.commit_batch(SEQUENCER, 1, GENESIS, root(5), b"other")
    assert rollup.totals()["committed"] == 1


def test_out_of_order_commit_rejected(rollup: RollupL1) -> None:
    with pytest.raises(RollupRevert, match="out of order"):
        rollup.commit_batch(SEQUENCER, 2, GENESIS, root(2), b"")


def test_wrong_prev_root_rejected(rollup: RollupL1, batch1) -> None:
    with pytest.raises(RollupRevert, match="prevRoot does not match"):
        rollup.commit_batch(SEQUENCER, 1, root(3), batch1["new"], batch1["data"])
    rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    with pytest.raises(RollupRevert, match="prevRoot does not match"):
        rollup.commit_batch(SEQUENCER, 2, GENESIS, root(2), b"")


def test_too_little_gas_for_verification_raises(rollup: RollupL1, batch1) -> None:
    """With a gas limit below the pairing check's cost the verifier returns false: it must not pass silently."""
    rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], batch1["data"])
    with pytest.raises(RollupRevert):
        rollup.prove_batch(PROVER, 1, batch1["proof"], gas=120_000)
    assert rollup.totals()["proven"] == 0


def test_bad_arguments_rejected_before_sending(rollup: RollupL1, batch1) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        rollup.commit_batch(SEQUENCER, 1, GENESIS[:31], batch1["new"], b"")
    with pytest.raises(ValueError, match="batch_number"):
        rollup.commit_batch(SEQUENCER, 0, GENESIS, batch1["new"], b"")
    with pytest.raises(ValueError, match="bytes"):
        rollup.commit_batch(SEQUENCER, 1, GENESIS, batch1["new"], "not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Proof"):
        rollup.prove_batch(PROVER, 1, (1, 2, 3))  # type: ignore[arg-type]


def test_gas_profile(rollup: RollupL1, prover: Groth16Prover, pytestconfig) -> None:
    """L1 gas of commit (1 kB, 10 kB, 50 kB of random data), proof verification and execution.

    Anvil's default hardfork charges the EIP-7623 calldata floor (≈40 gas per non-zero byte).
    Recorded as a CSV attachment and as JSON under the results dir.
    """
    rows = []
    prev = GENESIS
    rng = __import__("random").Random(5)
    for n, size in enumerate([1_000, 10_000, 50_000], start=1):
        data = rng.randbytes(size)
        new = root(1000 + n)
        c = rollup.commit_batch(SEQUENCER, n, prev, new, data)
        proof = prove_for(prover, rollup, n, prev, new, data_hash(data))
        p = rollup.prove_batch(PROVER, n, proof)
        e = rollup.execute_batch(PROVER, n)
        rows.append(
            {
                "batch": n,
                "data_bytes": size,
                "commit_gas": c.gas_used,
                "commit_gas_per_byte": c.gas_used / size,
                "prove_gas": p.gas_used,
                "execute_gas": e.gas_used,
                "proof_seconds": round(proof.seconds, 3),
                "snarkjs_prove_seconds": round(proof.prove_seconds, 3),
            }
        )
        prev = new
    attach_table("rollup_l1_gas.csv", rows)
    out = Path(pytestconfig.getoption("--results-dir")) / "rollup_l1_gas.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"unit": "gas", "hardfork": "anvil default", "rows": rows}, indent=2))
    for r in rows:
        assert 200_000 < r["prove_gas"] < 350_000, r  # Groth16 (1 public input) ≈ 215 k + storage
        assert r["execute_gas"] < 80_000, r
        assert r["commit_gas"] >= 21_000 + 16 * r["data_bytes"], r
    assert rows[0]["commit_gas"] < rows[1]["commit_gas"] < rows[2]["commit_gas"]


# ---- EIP-4844 blob path ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 31, 4096 * 31 - 4, 4096 * 31 - 3, 300_000])
def test_blob_encoding_roundtrip(size: int) -> None:
    data = __import__("random").Random(size).randbytes(size)
    blobs = encode_blobs(data)
    assert all(len(b) == 131_072 and all(b[i] == 0 for i in range(0, 131_072, 32)) for b in blobs)
    assert len(blobs) == max(1, -(-(size + 4) // (4096 * 31)))
    assert decode_blobs(blobs) == data


def test_blob_encoding_rejects_too_much_data() -> None:
    with pytest.raises(ValueError, match="at most 6"):
        encode_blobs(bytes(6 * 4096 * 31))


def test_commit_via_blobs_prove_execute(rollup: RollupL1, prover: Groth16Prover) -> None:
    data = __import__("random").Random(1).randbytes(200_000)  # two blobs
    c = rollup.commit_batch_blobs(SEQUENCER, 1, GENESIS, root(1), data)
    assert len(c.blob_versioned_hashes) == 2 and c.blob_gas_used == 2 * 131_072
    dh = blob_data_hash(c.blob_versioned_hashes)
    assert c.events[0]["dataHash"] == dh.hex() and rollup.batch(1)["data_hash"] == dh
    assert rollup.batch(1)["data_length"] == len(data)
    assert c.gas_used < 200_000  # no calldata for the payload
    with pytest.raises(RollupRevert, match="invalid proof"):  # a proof over keccak(data) is for other data
        rollup.prove_batch(PROVER, 1, prove_for(prover, rollup, 1, GENESIS, root(1), data_hash(data)))
    rollup.prove_batch(PROVER, 1, prove_for(prover, rollup, 1, GENESIS, root(1), dh))
    rollup.execute_batch(PROVER, 1)
    assert rollup.totals() == {"committed": 1, "proven": 1, "executed": 1}


def test_blob_commit_without_blobs_rejected(rollup: RollupL1) -> None:
    call = rollup.contract.functions.commitBatchBlobs(1, GENESIS, root(1), 1, 10)
    with pytest.raises(RollupRevert, match="missing blob"):
        rollup._send(SEQUENCER, "commitBatchBlobs", call, 200_000)
    call = rollup.contract.functions.commitBatchBlobs(1, GENESIS, root(1), 1, 10)
    cache_kzg_trusted_setup()
    with pytest.raises(RollupRevert, match="more blobs attached"):
        rollup._send(SEQUENCER, "commitBatchBlobs", call, 200_000, blobs=encode_blobs(bytes(200_000)))


# ---- solc cache -------------------------------------------------------------------------------------


def test_solc_cache_hit_on_second_compile(tmp_path: Path) -> None:
    src = {
        "Tiny.sol": f"// {os.getpid()}\npragma solidity ^0.8.0;\ncontract Tiny {{ uint256 public x = 7; }}\n"
    }
    first = solc.compile_sources(src, cache_dir=tmp_path)
    assert solc.last_stats is not None and not solc.last_stats.cache_hit
    second = solc.compile_sources(src, cache_dir=tmp_path)
    assert solc.last_stats.cache_hit and solc.last_stats.seconds < 0.5
    assert first == second and first["Tiny"]["bytecode"].startswith("0x6080")
    assert len(list(tmp_path.glob("*.json"))) == 1
    solc.compile_sources(src, cache_dir=tmp_path, runs=1)  # other settings => other key, a miss
    assert not solc.last_stats.cache_hit


def test_solc_reports_errors(tmp_path: Path) -> None:
    with pytest.raises(solc.SolcError, match="DeclarationError|ParserError"):
        solc.compile_sources(
            {"Bad.sol": "pragma solidity ^0.8.0; contract B { function f() { y = 1; } }"}, cache_dir=tmp_path
        )
    assert not list(tmp_path.glob("*.json"))
