"""Groth16 proofs that bind one rollup batch commitment (see README.md for what that does and does not prove).

    prover = Groth16Prover()                       # ensures the (cached, deterministic) setup
    proof = prover.prove(n, prev_root, new_root, data_hash, chain_id=l1.chain_id, rollup_address=l1.address)
    rollup.prove_batch(key, n, proof)

The public input is the value ``Rollup.sol`` derives on-chain from the stored batch record and the
deployment it runs in (``block.chainid``, ``address(this)``)::

    commitment = uint256(keccak256(abi.encode(uint256 chainId, address rollup, uint256 batchNumber,
                                              bytes32 prevRoot, bytes32 newRoot, bytes32 dataHash))) >> 3
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from eth_abi import encode as abi_encode
from eth_utils import is_address, keccak

from harness.rollup.zk.setup import (
    DEFAULT_CACHE_DIR,
    NODE_MODULES,
    ZK_DIR,
    ZkArtifacts,
    ensure_setup,
    run_tool,
)

SNARK_JS = ZK_DIR / "snark.js"
SNARKJS_PKG = NODE_MODULES / "snarkjs"
#: BN254 scalar field order (the circuit's field).
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
PROVE_TIMEOUT_S = 120.0


class ProverError(RuntimeError):
    """Proof generation or off-chain verification failed."""


@dataclass(frozen=True)
class Proof:
    """A Groth16 proof in the layout the exported Solidity verifier expects.

    ``b`` is already in the verifier's order (each G2 coordinate pair swapped relative to snarkjs's JSON).
    ``seconds`` is wall time of ``prove`` (node start + witness + proof); ``prove_seconds`` is the time
    inside snarkjs's ``fullProve`` only.
    """

    a: tuple[int, int]
    b: tuple[tuple[int, int], tuple[int, int]]
    c: tuple[int, int]
    public_signals: tuple[int, ...]
    seconds: float
    prove_seconds: float
    batch_number: int
    snarkjs_proof: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def commitment(self) -> int:
        return self.public_signals[0]

    def as_args(self) -> tuple[list[int], list[list[int]], list[int]]:
        """(a, b, c) as lists for a web3 contract call."""
        return list(self.a), [list(self.b[0]), list(self.b[1])], list(self.c)


def _bytes32(name: str, value: bytes) -> bytes:
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        got = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ValueError(f"{name} must be 32 bytes (a keccak-256 value), got {got}")
    return bytes(value)


def _address(value: str | bytes) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and is_address(value):
        return value
    raise ValueError(f"rollup_address must be a 20-byte address, got {value!r:.80}")


def batch_commitment(
    batch_number: int,
    prev_root: bytes,
    new_root: bytes,
    data_hash: bytes,
    *,
    chain_id: int,
    rollup_address: str | bytes,
) -> int:
    """The circuit's single public input, exactly as Rollup.sol's ``commitmentOf`` computes it on the
    deployment at ``rollup_address`` on L1 chain ``chain_id`` (an int < 2^253 < r)."""
    if not isinstance(batch_number, int) or isinstance(batch_number, bool) or not 1 <= batch_number < 2**256:
        raise ValueError(f"batch_number must be an int in [1, 2^256), got {batch_number!r}")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or not 0 <= chain_id < 2**256:
        raise ValueError(f"chain_id must be an int in [0, 2^256), got {chain_id!r}")
    encoded = abi_encode(
        ["uint256", "address", "uint256", "bytes32", "bytes32", "bytes32"],
        [
            chain_id,
            _address(rollup_address),
            batch_number,
            _bytes32("prev_root", prev_root),
            _bytes32("new_root", new_root),
            _bytes32("data_hash", data_hash),
        ],
    )
    return int.from_bytes(keccak(encoded), "big") >> 3


class Groth16Prover:
    """Proves batch commitments with the cached setup (built on first use, under a file lock)."""

    def __init__(self, cache_dir: Path = DEFAULT_CACHE_DIR) -> None:
        self.artifacts: ZkArtifacts = ensure_setup(cache_dir)

    def _node(self, request: dict, timeout_s: float = PROVE_TIMEOUT_S) -> tuple[dict, float]:
        request = {"snarkjs": str(SNARKJS_PKG), **request}
        try:
            out, seconds = run_tool(
                ["node", str(SNARK_JS)], timeout_s=timeout_s, stdin=json.dumps(request).encode()
            )
        except RuntimeError as exc:
            raise ProverError(str(exc)) from exc
        return json.loads(out), seconds

    def prove(
        self,
        batch_number: int,
        prev_root: bytes,
        new_root: bytes,
        data_hash: bytes,
        *,
        chain_id: int,
        rollup_address: str | bytes,
    ) -> Proof:
        """Prove the batch's commitment for the deployment ``rollup_address`` on L1 chain ``chain_id``
        (a proof for one deployment does not verify on another). Takes ≈0.5–1 s (one node process per proof)."""
        commitment = batch_commitment(
            batch_number, prev_root, new_root, data_hash, chain_id=chain_id, rollup_address=rollup_address
        )
        reply, seconds = self._node(
            {
                "op": "prove",
                "input": {"commitment": str(commitment)},
                "wasm": str(self.artifacts.wasm),
                "zkey": str(self.artifacts.zkey),
            }
        )
        p = reply["proof"]
        signals = tuple(int(s) for s in reply["publicSignals"])
        if signals != (commitment,):
            raise ProverError(f"snarkjs returned public signals {signals}, expected ({commitment},)")
        return Proof(
            a=(int(p["pi_a"][0]), int(p["pi_a"][1])),
            b=((int(p["pi_b"][0][1]), int(p["pi_b"][0][0])), (int(p["pi_b"][1][1]), int(p["pi_b"][1][0]))),
            c=(int(p["pi_c"][0]), int(p["pi_c"][1])),
            public_signals=signals,
            seconds=seconds,
            prove_seconds=reply["prove_ms"] / 1000.0,
            batch_number=batch_number,
            snarkjs_proof=p,
        )

    def verify(self, proof: Proof, public_signals: tuple[int, ...] | None = None) -> bool:
        """Off-chain check with snarkjs against the verification key (optionally for other public signals)."""
        signals = proof.public_signals if public_signals is None else public_signals
        reply, _ = self._node(
            {
                "op": "verify",
                "vkey": str(self.artifacts.vkey),
                "publicSignals": [str(s) for s in signals],
                "proof": proof.snarkjs_proof,
            }
        )
        return bool(reply["ok"])
