"""The Groth16 setup and prover (circom2 + snarkjs from npm), off-chain.

The shared setup lives in .cache/zk/<circuit key>/ (built once, under a FileLock, by whichever test or
worker gets there first). ``test_setup_is_deterministic`` rebuilds it from scratch in a temp dir and
compares bytes: ≈15–30 s on 2 cores.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.report.attach import attach_json
from harness.rollup.zk import setup as zk_setup
from harness.rollup.zk.prover import BN254_R, Groth16Prover, batch_commitment

CONTRACTS = zk_setup.REPO / "harness/rollup/contracts"
ROOT_A = bytes.fromhex("aa" * 32)
ROOT_B = bytes.fromhex("bb" * 32)
DATA_H = bytes.fromhex("cc" * 32)
CHAIN = 31337
ROLLUP = "0x" + "dd" * 20
AT = {"chain_id": CHAIN, "rollup_address": ROLLUP}  # the deployment a proof is bound to


@pytest.fixture(scope="module")
def prover() -> Groth16Prover:
    return Groth16Prover()


def test_setup_summary(prover: Groth16Prover) -> None:
    info = prover.artifacts.info
    attach_json("zk_setup.json", info)
    assert info["constraints"] == 253  # Num2Bits(253)
    assert info["public_inputs"] == 1
    assert 2 ** info["power"] >= info["constraints"] + info["public_inputs"] + 1
    for path in (
        prover.artifacts.wasm,
        prover.artifacts.zkey,
        prover.artifacts.vkey,
        prover.artifacts.verifier_sol,
    ):
        assert path.is_file(), path
    vkey = json.loads(prover.artifacts.vkey.read_text())
    assert vkey["protocol"] == "groth16" and vkey["curve"] == "bn128" and vkey["nPublic"] == 1


def test_committed_verifier_is_the_generated_one(prover: Groth16Prover) -> None:
    """harness/rollup/contracts/Groth16Verifier.sol is a copy of the setup's export (the deployed one)."""
    assert (CONTRACTS / "Groth16Verifier.sol").read_text() == prover.artifacts.verifier_sol.read_text(), (
        "the circuit or the ceremony changed: copy the new verifier from "
        f"{prover.artifacts.verifier_sol} to harness/rollup/contracts/"
    )


@pytest.mark.slow
def test_setup_is_deterministic(prover: Groth16Prover, tmp_path) -> None:
    """A from-scratch rebuild gives byte-identical keys and verifier (public beacons, no randomness)."""
    rebuilt = zk_setup.ensure_setup(tmp_path)
    assert rebuilt.directory != prover.artifacts.directory
    for name in ("circuit_final.zkey", "verification_key.json", "Groth16Verifier.sol"):
        a = hashlib.sha256((rebuilt.directory / name).read_bytes()).hexdigest()
        b = hashlib.sha256((prover.artifacts.directory / name).read_bytes()).hexdigest()
        assert a == b, f"{name} differs between two setups"
    attach_json("zk_setup_rebuild_seconds.json", rebuilt.info["seconds"])


def test_setup_cache_hit_is_instant(prover: Groth16Prover) -> None:
    import time

    t0 = time.perf_counter()
    again = zk_setup.ensure_setup()
    assert time.perf_counter() - t0 < 1.0
    assert again.directory == prover.artifacts.directory


def test_prove_and_verify_offchain(prover: Groth16Prover) -> None:
    proof = prover.prove(1, ROOT_A, ROOT_B, DATA_H, **AT)
    assert proof.public_signals == (batch_commitment(1, ROOT_A, ROOT_B, DATA_H, **AT),)
    assert all(0 < v < 2**256 for v in (*proof.a, *proof.c, *proof.b[0], *proof.b[1]))
    assert 0 < proof.prove_seconds <= proof.seconds
    assert prover.verify(proof)
    # the same proof does not verify for the next batch's commitment (or any other)
    assert not prover.verify(proof, (batch_commitment(2, ROOT_A, ROOT_B, DATA_H, **AT),))
    assert not prover.verify(proof, (proof.commitment + 1,))
    # nor for the same batch on another chain or another contract
    assert not prover.verify(proof, (batch_commitment(1, ROOT_A, ROOT_B, DATA_H, chain_id=CHAIN + 1,
                                                      rollup_address=ROLLUP),))
    assert not prover.verify(proof, (batch_commitment(1, ROOT_A, ROOT_B, DATA_H, chain_id=CHAIN,
                                                      rollup_address="0x" + "de" * 20),))


def test_prover_rejects_bad_input(prover: Groth16Prover) -> None:
    with pytest.raises(ValueError, match="prev_root must be 32 bytes"):
        prover.prove(1, ROOT_A[:31], ROOT_B, DATA_H, **AT)
    with pytest.raises(ValueError, match="data_hash must be 32 bytes"):
        prover.prove(1, ROOT_A, ROOT_B, b"", **AT)
    for n in (0, -1, 2**256, True, 1.0):
        with pytest.raises(ValueError, match="batch_number"):
            prover.prove(n, ROOT_A, ROOT_B, DATA_H, **AT)  # type: ignore[arg-type]
    for bad in ("0x1234", b"\x00" * 19, 5, "dd" * 21):
        with pytest.raises(ValueError, match="rollup_address"):
            prover.prove(1, ROOT_A, ROOT_B, DATA_H, chain_id=CHAIN, rollup_address=bad)  # type: ignore[arg-type]
    for cid in (-1, 2**256, True, "1"):
        with pytest.raises(ValueError, match="chain_id"):
            prover.prove(1, ROOT_A, ROOT_B, DATA_H, chain_id=cid, rollup_address=ROLLUP)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # the deployment is required: no proof bound to nothing
        prover.prove(1, ROOT_A, ROOT_B, DATA_H)  # type: ignore[call-arg]


@given(
    n=st.integers(min_value=1, max_value=2**256 - 1),
    roots=st.lists(st.binary(min_size=32, max_size=32), min_size=3, max_size=3),
    chain=st.integers(min_value=0, max_value=2**256 - 2),
    addr=st.binary(min_size=20, max_size=20),
)
def test_commitment_is_a_canonical_field_element(n: int, roots: list[bytes], chain: int, addr: bytes) -> None:
    at = {"chain_id": chain, "rollup_address": addr}
    c = batch_commitment(n, *roots, **at)
    assert 0 <= c < 2**253 < BN254_R
    assert c != batch_commitment(n + 1 if n < 2**256 - 1 else n - 1, *roots, **at)
    assert c != batch_commitment(n, *roots, chain_id=chain + 1, rollup_address=addr)
    other = bytes([addr[0] ^ 1]) + addr[1:]
    assert c != batch_commitment(n, *roots, chain_id=chain, rollup_address=other)
