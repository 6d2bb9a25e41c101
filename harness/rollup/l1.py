"""Python bindings for Rollup.sol + its Groth16 verifier on an L1 JSON-RPC endpoint (web3 8.x).

    l1 = RollupL1.deploy(url, deployer_key, sequencer_address, genesis_root)   # prover = sequencer
    r = l1.commit_batch(seq_key, 1, genesis_root, new_root, data)     # L1TxResult
    r = l1.prove_batch(key, 1, prover.prove(1, genesis_root, new_root, keccak(data),
                                            chain_id=l1.chain_id, rollup_address=l1.address))
    r = l1.execute_batch(key, 1)                                      # key: the prover's or the sequencer's

Every write is signed locally, sent with an EXPLICIT gas limit (``estimate_gas`` under-reports the
pairing precompile's cost and the verifier then returns false instead of reverting), and waits for its
receipt. A receipt with status 0 raises :class:`RollupRevert` carrying the revert reason (read back
with ``debug_traceTransaction``, falling back to replaying the call); nothing returns silently with
status 0. ``L1TxResult.seconds`` is wall time from submission to the receipt being seen (polled every
50 ms), so it includes waiting for the L1 block.

Reorgs: every result carries the hash of the block that mined it (``block_hash``), so a caller can ask
later whether that block is still canonical (:meth:`RollupL1.block_hashes`). Nonces are chosen here, not
by the L1's ``pending`` count alone: a reorg drops mined txs of this key (anvil drops them outright) while
later ones wait in the pool behind the hole, and ``pending`` then points above the hole. The lowest
nonce this instance sent whose tx the L1 no longer knows is reused first, so re-sends fill the hole, and
a receipt wait that sits behind such a hole gives up (:class:`NonceGap`) instead of waiting out the
timeout. Assumes the key sends only through this instance (the node's operator key).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError, TransactionNotFound
from web3.logs import DISCARD

from harness.rollup import solc
from harness.rollup.blobs import (
    blob_data_hash,
    blob_versioned_hashes,
    bytes32,
    decode_blobs,
    encode_blobs,
    sign_blob_tx,
)
from harness.rollup.zk.prover import Proof
from harness.rollup.zk.setup import DEFAULT_CACHE_DIR, ensure_setup

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
ROLLUP_SOL = CONTRACTS_DIR / "Rollup.sol"
#: Gas limits (units: gas). Commit: fixed part + per data byte; covers the EIP-7623 floor (40/byte).
COMMIT_GAS_BASE = 300_000
COMMIT_GAS_PER_BYTE = 42
PROVE_GAS = 500_000  # measured ≈ 250 k (≈ 215 k of it the pairing check)
EXECUTE_GAS = 120_000
PRIORITY_FEE_WEI = 1_000_000_000
RECEIPT_TIMEOUT_S = 120.0
RECEIPT_POLL_S = 0.05
#: a sent tx the L1 does not know (neither mined nor pooled) in this many checks a second apart is taken as
#: dropped (a reorg); several, so an L1 behind a load balancer that shows a pooled tx late is not misread
GONE_CHECKS = 3


class L1Error(RuntimeError):
    """Talking to L1 failed (no receipt in time, deployment failed, bad arguments)."""


class NonceGap(L1Error):
    """A sent tx waits in the pool behind a nonce whose tx the L1 dropped (a reorg): re-send instead."""


class BatchNotCommitted(L1Error):
    """L1 (as read now) holds no commit for the batch: lagging or reorged L1 state, not a data mismatch."""


class RollupRevert(L1Error):
    """A Rollup transaction reverted. ``reason`` is the revert string (e.g. "Rollup: invalid proof")."""

    def __init__(self, function: str, reason: str, tx_hash: str | None = None, gas_used: int | None = None):
        where = f" (tx {tx_hash}, gas used {gas_used})" if tx_hash else " (rejected before sending)"
        super().__init__(f"{function} reverted: {reason}{where}")
        self.function = function
        self.reason = reason
        self.tx_hash = tx_hash
        self.gas_used = gas_used


@dataclass(frozen=True)
class L1TxResult:
    """One mined L1 transaction. ``seconds``: wall time submit -> receipt (None when rebuilt from L1 after
    a restart, see :meth:`RollupL1.step_tx`); ``block_timestamp``: unix s; ``gas_used`` is execution gas,
    ``blob_gas_used`` the EIP-4844 blob gas (0 for calldata), priced separately by the blob base fee."""

    tx_hash: str
    block_number: int
    block_timestamp: int
    gas_used: int
    status: int
    seconds: float | None
    gas_limit: int
    calldata_bytes: int
    events: tuple[dict, ...] = field(default=())
    blob_gas_used: int = 0
    blob_versioned_hashes: tuple[bytes, ...] = field(default=())
    block_hash: str | None = None  # the mining block's hash: still canonical? see RollupL1.block_hashes


#: settlement step -> (its event, the Batch struct field holding the L1 block it happened in)
STEP_EVENTS = {"commit": ("BlockCommit", "committed_block"), "prove": ("BlockProven", "proven_block"),
               "execute": ("BlockExecuted", "executed_block")}


#: write function -> the event its successful call emits
_STEP_EVENT_OF = {"commitBatch": "BlockCommit", "commitBatchBlobs": "BlockCommit", "proveBatch": "BlockProven",
                  "executeBatch": "BlockExecuted"}


class PublishedDataError(L1Error):
    """A batch's data on L1 cannot be read back, or does not match the hash the contract stored."""


@dataclass(frozen=True)
class PublishedBatch:
    """One batch as published on L1: the stored roots and data hash, and the data read from the commit tx.

    ``source`` says where the data came from ("calldata", or which blob path, see
    :meth:`RollupL1.published_batch`)."""

    batch_number: int
    prev_root: bytes
    new_root: bytes
    data_hash: bytes
    data: bytes
    commit_tx_hash: str
    source: str
    blob_versioned_hashes: tuple[bytes, ...] = ()


def _batch_number(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"batch_number must be an int >= 1, got {n!r}")
    return n


def compile_rollup(zk_cache_dir: Path | str = DEFAULT_CACHE_DIR) -> dict[str, dict]:
    """Compile Rollup.sol with the verifier generated by the (cached) ZK setup. Cached by source hash."""
    art = ensure_setup(zk_cache_dir)
    return solc.compile_files([ROLLUP_SOL, art.verifier_sol])


def _connect(l1_url: str) -> Web3:
    w3 = Web3(Web3.HTTPProvider(l1_url, request_kwargs={"timeout": 30}))
    if not w3.is_connected():
        raise L1Error(f"no JSON-RPC endpoint answers at {l1_url}")
    return w3


class RollupL1:
    """A deployed Rollup contract. Thread-safe for writes (one lock serialises nonce + send per instance)."""

    def __init__(self, w3: Web3, address: str, abi: list, verifier_address: str | None = None) -> None:
        self.w3 = w3
        self.address: str = Web3.to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=abi)
        self.verifier_address = verifier_address
        self.chain_id: int = w3.eth.chain_id
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, int], str] = {}  # (sender, nonce) -> tx hash, for nonces not yet mined deep

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def deploy(
        cls,
        l1_url: str,
        deployer_key: str,
        sequencer_address: str,
        genesis_root: bytes,
        zk_cache_dir: Path | str = DEFAULT_CACHE_DIR,
        prover_address: str | None = None,
    ) -> RollupL1:
        """Deploy the Groth16 verifier and Rollup(verifier, sequencer, prover, genesis_root).

        Only ``sequencer_address`` may commit; only ``prover_address`` or the sequencer may prove and
        execute. ``prover_address`` defaults to the sequencer (the node's one L1 key does all three)."""
        genesis_root = bytes32("genesis_root", genesis_root)
        sequencer_address = Web3.to_checksum_address(sequencer_address)
        prover_address = Web3.to_checksum_address(prover_address or sequencer_address)
        out = compile_rollup(zk_cache_dir)
        w3 = _connect(l1_url)
        verifier = cls._deploy_one(w3, deployer_key, out["Groth16Verifier"], [])
        rollup = cls._deploy_one(
            w3, deployer_key, out["Rollup"], [verifier, sequencer_address, prover_address, genesis_root]
        )
        return cls(w3, rollup, out["Rollup"]["abi"], verifier_address=verifier)

    @classmethod
    def attach(cls, l1_url: str, address: str, zk_cache_dir: Path | str = DEFAULT_CACHE_DIR) -> RollupL1:
        """Bind to an existing deployment (the ABI comes from compiling Rollup.sol with the verifier of the
        ZK setup in ``zk_cache_dir``, cached)."""
        w3 = _connect(l1_url)
        if not w3.eth.get_code(Web3.to_checksum_address(address)):
            raise L1Error(f"no contract code at {address} on {l1_url}")
        abi = compile_rollup(zk_cache_dir)["Rollup"]["abi"]
        inst = cls(w3, address, abi)
        inst.verifier_address = inst.contract.functions.verifier().call()
        return inst

    @staticmethod
    def _deploy_one(w3: Web3, key: str, compiled: dict, args: list) -> str:
        acct = Account.from_key(key)
        factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
        tx = factory.constructor(*args).build_transaction(
            {
                "from": acct.address,
                "nonce": w3.eth.get_transaction_count(acct.address, "pending"),
                "chainId": w3.eth.chain_id,
            }
        )
        tx["gas"] = int(tx["gas"] * 1.2) + 50_000
        signed = acct.sign_transaction(tx)
        h = w3.eth.send_raw_transaction(signed.raw_transaction)
        rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=RECEIPT_TIMEOUT_S, poll_latency=RECEIPT_POLL_S)
        if rcpt["status"] != 1 or not rcpt["contractAddress"]:
            raise L1Error(f"deployment failed (tx {h.to_0x_hex()}, status {rcpt['status']})")
        return rcpt["contractAddress"]

    # ---- writes ------------------------------------------------------------------------------------
    def commit_batch(
        self,
        sender_key: str,
        batch_number: int,
        prev_root: bytes,
        new_root: bytes,
        data: bytes,
        gas: int | None = None,
    ) -> L1TxResult:
        """commitBatch(n, prevRoot, newRoot, data): only the sequencer, in order, chained on prevRoot."""
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"data must be bytes, got {type(data).__name__}")
        call = self.contract.functions.commitBatch(
            _batch_number(batch_number),
            bytes32("prev_root", prev_root),
            bytes32("new_root", new_root),
            bytes(data),
        )
        limit = gas if gas is not None else COMMIT_GAS_BASE + COMMIT_GAS_PER_BYTE * len(data)
        return self._send(sender_key, "commitBatch", call, limit)

    def commit_batch_blobs(
        self,
        sender_key: str,
        batch_number: int,
        prev_root: bytes,
        new_root: bytes,
        data: bytes,
        gas: int = COMMIT_GAS_BASE,
    ) -> L1TxResult:
        """commitBatchBlobs: the data travels in EIP-4844 blobs (see :func:`encode_blobs`), not calldata.

        The stored dataHash is keccak256(concatenated blob versioned hashes); it is in the returned
        BlockCommit event, in ``batch(n)["data_hash"]`` and computable with :func:`blob_data_hash`.
        """
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"data must be bytes, got {type(data).__name__}")
        blobs = encode_blobs(bytes(data))
        call = self.contract.functions.commitBatchBlobs(
            _batch_number(batch_number),
            bytes32("prev_root", prev_root),
            bytes32("new_root", new_root),
            len(blobs),
            len(data),
        )
        return self._send(sender_key, "commitBatchBlobs", call, gas, blobs=blobs)

    def prove_batch(
        self, sender_key: str, batch_number: int, proof: Proof, gas: int = PROVE_GAS
    ) -> L1TxResult:
        """proveBatch(n, a, b, c): only the prover or the sequencer; the contract derives the public input
        from the stored batch record, its chain id and its own address."""
        if not isinstance(proof, Proof):
            raise ValueError(f"proof must be a harness.rollup.zk.prover.Proof, got {type(proof).__name__}")
        a, b, c = proof.as_args()
        call = self.contract.functions.proveBatch(_batch_number(batch_number), a, b, c)
        return self._send(sender_key, "proveBatch", call, gas)

    def execute_batch(self, sender_key: str, batch_number: int, gas: int = EXECUTE_GAS) -> L1TxResult:
        """executeBatch(n): only the prover or the sequencer, only after proven, in order."""
        call = self.contract.functions.executeBatch(_batch_number(batch_number))
        return self._send(sender_key, "executeBatch", call, gas)

    def _send(
        self, key: str, function: str, call: Any, gas: int, blobs: list[bytes] | None = None
    ) -> L1TxResult:
        acct = Account.from_key(key)
        with self._lock:
            base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas", 0)
            nonce = self._next_nonce(acct.address)
            tx = call.build_transaction(
                {
                    "from": acct.address,
                    "nonce": nonce,
                    "gas": int(gas),
                    "maxFeePerGas": 2 * base_fee + PRIORITY_FEE_WEI,
                    "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
                    "chainId": self.chain_id,
                }
            )
            if blobs:
                tx["type"] = 3
                tx["maxFeePerBlobGas"] = 2 * self._blob_base_fee() + 1
            raw = sign_blob_tx(key, tx, blobs) if blobs else acct.sign_transaction(tx).raw_transaction
            t0 = time.perf_counter()
            tx_hash = self.w3.eth.send_raw_transaction(raw)
            self._sent[(acct.address, nonce)] = tx_hash.to_0x_hex()
        rcpt = self._wait_receipt(function, acct.address, nonce, tx_hash)
        seconds = time.perf_counter() - t0
        h = tx_hash.to_0x_hex()
        if rcpt["status"] != 1:
            raise RollupRevert(function, self._revert_reason(h, tx, rcpt), h, rcpt["gasUsed"])
        events = self._events(rcpt)
        want = _STEP_EVENT_OF.get(function)
        if want and not any(e["event"] == want for e in events):  # status 1 from a call to an address without
            raise L1Error(f"{function}: tx {h} succeeded without a {want} event: no Rollup contract at "  # code
                          f"{self.address} on this L1 (now)?")
        try:  # by hash: the block that holds THIS receipt (a reorg since may have replaced that height)
            block = self.w3.eth.get_block(rcpt["blockHash"])
        except BlockNotFound as exc:
            raise L1Error(f"{function}: the block of {h}'s receipt is gone (reorged)") from exc
        return L1TxResult(
            tx_hash=h,
            block_number=rcpt["blockNumber"],
            block_timestamp=int(block["timestamp"]),
            gas_used=int(rcpt["gasUsed"]),
            status=int(rcpt["status"]),
            seconds=seconds,
            gas_limit=int(gas),
            calldata_bytes=len(bytes.fromhex(tx["data"].removeprefix("0x"))),
            events=events,
            blob_gas_used=int(rcpt.get("blobGasUsed", 0) or 0),
            blob_versioned_hashes=tuple(
                bytes(h) for h in (self.w3.eth.get_transaction(tx_hash).get("blobVersionedHashes") or [])
            )
            if blobs
            else (),
            block_hash=rcpt["blockHash"].to_0x_hex(),
        )

    def _tx_known(self, tx_hash: str) -> bool:
        """Whether the L1 knows the tx (mined or in its pool)."""
        try:
            return self.w3.eth.get_transaction(tx_hash) is not None
        except TransactionNotFound:
            return False

    def _next_nonce(self, sender: str) -> int:
        """The nonce for the next tx of ``sender`` (under self._lock): the lowest nonce at or above the mined
        count whose tx this instance sent and the L1 no longer knows (dropped by a reorg), else ``pending``."""
        latest = self.w3.eth.get_transaction_count(sender, "latest")
        pending = self.w3.eth.get_transaction_count(sender, "pending")
        mine = sorted(n for (s, n) in self._sent if s == sender)
        for n in mine:
            if n < latest - 64:  # long mined: forget it
                del self._sent[(sender, n)]
        for n in mine:
            if latest <= n < pending and not self._tx_known(self._sent[(sender, n)]):
                return n
        return max(latest, pending)

    def _wait_receipt(self, function: str, sender: str, nonce: int, tx_hash: Any) -> Any:
        """Poll for the receipt (every RECEIPT_POLL_S); about once a second check that the tx is not stuck
        behind a lower nonce of ours whose tx a reorg dropped (raises NonceGap), or itself dropped."""
        h = tx_hash.to_0x_hex()
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S
        next_check = time.monotonic() + 1.0
        unknown: dict[str, int] = {}  # tx hash -> consecutive checks the L1 did not know it (3 in a row: gone)

        def gone(t: str) -> bool:
            unknown[t] = 0 if self._tx_known(t) else unknown.get(t, 0) + 1
            return unknown[t] >= GONE_CHECKS

        while True:
            try:
                rcpt = self.w3.eth.get_transaction_receipt(tx_hash)
                if rcpt is not None:
                    return rcpt
            except TransactionNotFound:
                pass
            except Exception as exc:  # noqa: BLE001 - transport errors
                raise L1Error(f"{function}: receipt poll for {h} failed: {exc}") from exc
            now = time.monotonic()
            if now > deadline:
                raise L1Error(f"{function}: no receipt for {h} within {RECEIPT_TIMEOUT_S} s")
            if now >= next_check:
                next_check = now + 1.0
                if gone(h):
                    raise NonceGap(f"{function}: tx {h} (nonce {nonce}) is gone from the L1 (dropped by a reorg)")
                latest = self.w3.eth.get_transaction_count(sender, "latest")
                with self._lock:
                    below = [(n, t) for (s, n), t in self._sent.items() if s == sender and latest <= n < nonce]
                for n, t in below:
                    if gone(t):
                        raise NonceGap(f"{function}: tx {h} (nonce {nonce}) waits behind nonce {n}, whose tx "
                                       f"{t} the L1 dropped (a reorg); re-send")
            time.sleep(RECEIPT_POLL_S)

    def _blob_base_fee(self) -> int:
        try:
            return int(self.w3.provider.make_request("eth_blobBaseFee", []).get("result", "0x1"), 16)
        except Exception:  # noqa: BLE001 - pre-Cancun endpoints
            return 1

    def _events(self, rcpt: Any) -> tuple[dict, ...]:
        found = []
        for name in ("BlockCommit", "BlockProven", "BlockExecuted"):
            for ev in getattr(self.contract.events, name)().process_receipt(rcpt, errors=DISCARD):
                args = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in ev["args"].items()}
                found.append({"event": name, **args})
        return tuple(found)

    def _revert_reason(self, tx_hash: str, tx: dict, rcpt: Any) -> str:
        """The revert reason of a mined, failed tx: the node's trace, else a replay one block earlier."""
        try:
            trace = (
                self.w3.provider.make_request(
                    "debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}]
                ).get("result")
                or {}
            )
            if trace.get("revertReason"):
                return str(trace["revertReason"])
            if trace.get("error"):
                return str(trace["error"])
        except Exception:  # noqa: BLE001 - not every L1 exposes debug_*; fall back to a replay
            pass
        try:
            self.w3.eth.call({k: tx[k] for k in ("from", "to", "data", "gas")}, rcpt["blockNumber"] - 1)
        except ContractLogicError as exc:
            return str(exc.message or exc)
        except Exception as exc:  # noqa: BLE001
            return f"unknown (replay failed: {exc})"
        if rcpt["gasUsed"] >= tx["gas"]:
            return f"out of gas (limit {tx['gas']})"
        return "unknown (the replay one block earlier did not revert)"

    # ---- reads -------------------------------------------------------------------------------------
    def totals(self) -> dict:
        """{"committed": int, "proven": int, "executed": int} (highest batch number of each)."""
        f = self.contract.functions
        return {
            "committed": f.totalCommitted().call(),
            "proven": f.totalProven().call(),
            "executed": f.totalExecuted().call(),
        }

    def batch(self, n: int) -> dict:
        """The stored record of batch ``n`` (roots/hash as bytes; *_block 0 = not yet; *_at unix s)."""
        rec = self.contract.functions.batches(_batch_number(n)).call()
        keys = (
            "prev_root",
            "new_root",
            "data_hash",
            "data_length",
            "committed_block",
            "committed_at",
            "proven_block",
            "proven_at",
            "executed_block",
            "executed_at",
        )
        out = dict(zip(keys, rec, strict=True))
        out["batch_number"] = n
        out["committed"] = out["committed_block"] != 0
        out["proven"] = out["proven_block"] != 0
        out["executed"] = out["executed_block"] != 0
        return out

    def head(self) -> int:
        """The L1's latest block number."""
        return int(self.w3.eth.block_number)

    def finalized_block(self) -> int | None:
        """The number of the L1's ``finalized`` block (anvil: latest - 2 x slots-in-an-epoch, 32 by default);
        None when the L1 does not serve the ``finalized`` tag."""
        try:
            blk = self.w3.eth.get_block("finalized")
        except (BlockNotFound, ValueError):
            return None
        except Exception as exc:  # noqa: BLE001 - an L1 that rejects the tag answers with an RPC error
            if "finalized" in str(exc).lower() or "unknown block" in str(exc).lower():
                return None
            raise
        return int(blk["number"]) if blk is not None else None

    def block_hashes(self, numbers: list[int]) -> dict[int, str | None]:
        """The canonical hash of each L1 block number now (None: the L1 has no block there yet, e.g. a lagging
        read). One JSON-RPC batch request."""
        nums = sorted(set(int(n) for n in numbers))
        if not nums:
            return {}
        reqs = [("eth_getBlockByNumber", [hex(n), False]) for n in nums]
        replies = self.w3.provider.make_batch_request(reqs)
        if isinstance(replies, dict):  # the whole batch failed
            raise L1Error(f"block hash batch failed: {replies.get('error')}")
        out: dict[int, str | None] = {}
        for n, rep in zip(nums, replies, strict=True):
            if rep.get("error"):
                raise L1Error(f"eth_getBlockByNumber({n}): {rep['error']}")
            blk = rep.get("result")
            h = blk.get("hash") if blk else None
            out[n] = (h if isinstance(h, str) else Web3.to_hex(h)) if h is not None else None
        return out

    def step_tx(self, n: int, step: str) -> L1TxResult | None:
        """Rebuild the L1 transaction of one settlement step of batch ``n`` from L1 alone (after a crash):
        the contract's stored block number for the step, the step's event (``BlockCommit`` /
        ``BlockProven`` / ``BlockExecuted``, indexed by batch number) in that block, its receipt (gas used,
        blob gas used) and the block's timestamp. ``seconds`` is None (the submit instant is unknown).
        None if the step has not happened on L1."""
        if step not in STEP_EVENTS:
            raise ValueError(f"step must be one of {sorted(STEP_EVENTS)}, got {step!r}")
        event_name, block_key = STEP_EVENTS[step]
        block = int(self.batch(n)[block_key])
        if block == 0:
            return None
        logs = list(getattr(self.contract.events, event_name)().get_logs(
            from_block=block, to_block=block, argument_filters={"batchNumber": _batch_number(n)}))
        if len(logs) != 1:
            raise L1Error(f"batch {n}: expected one {event_name} event in L1 block {block}, found {len(logs)}")
        tx_hash = logs[0]["transactionHash"]
        rcpt = self.w3.eth.get_transaction_receipt(tx_hash)
        if int(rcpt["blockNumber"]) != block:  # state and receipts read from different L1 views (a reorg)
            raise L1Error(f"batch {n}: {event_name} receipt is in block {rcpt['blockNumber']}, L1 state says {block}")
        tx = self.w3.eth.get_transaction(tx_hash)
        ts = int(self.w3.eth.get_block(block)["timestamp"])
        return L1TxResult(
            tx_hash=tx_hash.to_0x_hex(),
            block_number=block,
            block_timestamp=ts,
            gas_used=int(rcpt["gasUsed"]),
            status=int(rcpt["status"]),
            seconds=None,
            gas_limit=int(tx["gas"]),
            calldata_bytes=len(bytes(tx["input"])),
            events=self._events(rcpt),
            blob_gas_used=int(rcpt.get("blobGasUsed", 0) or 0),
            blob_versioned_hashes=tuple(bytes(h) for h in (tx.get("blobVersionedHashes") or [])),
            block_hash=rcpt["blockHash"].to_0x_hex(),
        )

    def published_batch(self, n: int, local_data: bytes | None = None) -> PublishedBatch:
        """Batch ``n``'s data as PUBLISHED on L1, checked against what the contract stored.

        The commit transaction is found from L1 alone (:meth:`step_tx`); its input must decode as
        ``commitBatch`` / ``commitBatchBlobs`` for batch ``n`` with the stored roots. Calldata: the data
        is the call's ``data`` argument and keccak256(data) must equal the stored ``dataHash``. Blobs:
        the blobs are read back from the L1 (``anvil_getBlobsByTransactionHash``, which anvil serves);
        if the L1 does not serve blobs (a real execution client keeps them on the consensus layer),
        ``local_data`` is re-encoded into blobs instead. Either way the blobs' KZG versioned hashes are
        recomputed here and must equal the transaction's ``blobVersionedHashes``, whose keccak must equal
        the stored ``dataHash``. Raises :class:`PublishedDataError` on any mismatch; :class:`BatchNotCommitted`
        (a state question, not a mismatch: retry) when L1 as read now holds no commit of batch ``n``."""
        stored = self.batch(n)
        if not stored["committed"]:
            raise BatchNotCommitted(f"batch {n} is not committed on L1 (as read now)")
        commit = self.step_tx(n, "commit")
        assert commit is not None
        tx = self.w3.eth.get_transaction(commit.tx_hash)
        if tx["to"] is None or Web3.to_checksum_address(tx["to"]) != self.address:
            raise PublishedDataError(f"batch {n}: commit tx {commit.tx_hash} is not a call to {self.address}")
        try:
            fn, args = self.contract.decode_function_input(tx["input"])
        except Exception as exc:  # noqa: BLE001 - not one of the contract's functions
            raise PublishedDataError(f"batch {n}: commit tx input does not decode: {exc}") from exc
        prev_root, new_root, data_hash = (bytes(stored[k]) for k in ("prev_root", "new_root", "data_hash"))
        if (args.get("batchNumber") != n or bytes(args.get("prevRoot", b"")) != prev_root
                or bytes(args.get("newRoot", b"")) != new_root):
            raise PublishedDataError(f"batch {n}: commit tx {commit.tx_hash} arguments do not match the stored "
                                     f"batch ({fn.fn_name} for batch {args.get('batchNumber')})")
        if fn.fn_name == "commitBatch":
            data = bytes(args["data"])
            if keccak(data) != data_hash:
                raise PublishedDataError(f"batch {n}: keccak(calldata) != stored dataHash")
            return PublishedBatch(n, prev_root, new_root, data_hash, data, commit.tx_hash, "calldata")
        if fn.fn_name != "commitBatchBlobs":
            raise PublishedDataError(f"batch {n}: commit tx calls {fn.fn_name}, not a commit function")
        count = int(args["blobCount"])
        vhs = tuple(bytes(h) for h in (tx.get("blobVersionedHashes") or []))[:count]
        if len(vhs) != count or blob_data_hash(vhs) != data_hash:
            raise PublishedDataError(f"batch {n}: keccak(blob versioned hashes) != stored dataHash")
        source = "blobs (read back from L1: anvil_getBlobsByTransactionHash)"
        try:
            reply = self.w3.provider.make_request("anvil_getBlobsByTransactionHash", [commit.tx_hash])
            if "error" in reply or not reply.get("result"):
                raise L1Error(str(reply.get("error") or "no blobs"))
            blobs = [bytes.fromhex(b.removeprefix("0x")) for b in reply["result"]][:count]
        except Exception as exc:  # noqa: BLE001 - this L1 does not serve blobs over JSON-RPC
            if local_data is None:
                raise PublishedDataError(f"batch {n}: the L1 does not serve blobs ({exc}) and no local copy "
                                         "was given") from exc
            blobs = encode_blobs(local_data)
            source = "blobs (local copy, checked against the L1's KZG versioned hashes)"
        if tuple(blob_versioned_hashes(blobs)) != vhs:
            raise PublishedDataError(f"batch {n}: the blobs' KZG versioned hashes != the commit tx's ({source})")
        data = decode_blobs(blobs)
        if len(data) != int(stored["data_length"]):
            raise PublishedDataError(f"batch {n}: blob payload is {len(data)} bytes, L1 says {stored['data_length']}")
        return PublishedBatch(n, prev_root, new_root, data_hash, data, commit.tx_hash, source, vhs)

    def genesis_root(self) -> bytes:
        return bytes(self.contract.functions.genesisRoot().call())

    def sequencer(self) -> str:
        return self.contract.functions.sequencer().call()

    def prover(self) -> str:
        """The address allowed (besides the sequencer) to prove and execute."""
        return self.contract.functions.prover().call()

    def batch_commitment(self, n: int) -> int:
        """The public input the contract derives for committed batch ``n``."""
        try:
            return self.contract.functions.batchCommitment(_batch_number(n)).call()
        except ContractLogicError as exc:
            raise RollupRevert("batchCommitment", str(exc.message or exc)) from exc
