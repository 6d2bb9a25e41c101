"""Benchmarks of the rollup's proof pipeline (feeds B5, hard finality): Groth16 proving and verification gas.

    python -m pytest benchmarks/test_rollup_zk.py -p no:xdist --benchmark-only

Proof time is wall time of one ``Groth16Prover.prove`` (node start + witness + snarkjs fullProve).
"""

from __future__ import annotations

import pytest

from harness.rollup.zk.prover import Groth16Prover

ROOT_A = bytes.fromhex("aa" * 32)
ROOT_B = bytes.fromhex("bb" * 32)
DATA_H = bytes.fromhex("cc" * 32)
ROLLUP = "0x" + "dd" * 20  # any deployment: the proof cost does not depend on it


@pytest.fixture(scope="module")
def prover() -> Groth16Prover:
    return Groth16Prover()


def test_bench_groth16_prove(benchmark, prover: Groth16Prover) -> None:
    counter = iter(range(1, 10_000))
    proof = benchmark.pedantic(
        lambda: prover.prove(next(counter), ROOT_A, ROOT_B, DATA_H, chain_id=1, rollup_address=ROLLUP),
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    benchmark.extra_info.update(
        {
            "claim": "B5",
            "what": "groth16_prove_seconds (wall, one node process per proof)",
            "constraints": prover.artifacts.constraints,
            "snarkjs_prove_seconds_last": proof.prove_seconds,
            "setup_seconds_total": prover.artifacts.info["setup_seconds_total"],
        }
    )
    assert prover.verify(proof)
