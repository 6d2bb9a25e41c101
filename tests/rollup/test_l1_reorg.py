"""L1 reorgs under load: nothing accepted is lost, a commit the reorg dropped is sent again, every tx
reaches hard finality, and the node never halts.

The node runs on its own L1 anvil (1 s blocks, ``finalized`` = latest - 8: fixtures/rollup.py
``epoch_l1``) with 2 confirmations. While transfers stream in, the test reorgs L1 twice with
``anvil_reorg`` (anvil rewinds to a common block and mines empty blocks in place of the removed ones;
the txs in them are gone, not returned to the pool):

1. as soon as a commit tx is mined but not yet 2 blocks deep (its receipt is awaiting confirmation),
   3 blocks deep: the commit is lost before it counted;
2. once a step mined after that has counted (2 blocks deep), 5 blocks deep: a step already counted
   done is undone too (the node demotes the batch and sends the step again).

Asserts: every tx the node acknowledged has an L2 receipt; at least one batch records a lost commit
(``l1_reorged``) and its final commit (on L1, read back from L1) is another tx in a canonical block;
every tx's block reaches ``verified`` (executed on L1) and the ``finalized`` tag passes it; the
``finalized`` tag never moved back (both reorgs are shallower than L1's finalized distance); no halt,
no refusal; L1 totals equal the node's counts.
"""

from __future__ import annotations

import threading
import time

import pytest

from fixtures.rollup import EPOCH_L1_SLOTS, l1_operator_key
from harness.chain.accounts import DEFAULT_MNEMONIC, derive_account
from harness.chain.rpc import rpc_call
from harness.rollup.l1 import RollupL1

from ._l2tx import raw_transfer, wait_for

pytestmark = [pytest.mark.chain, pytest.mark.slow]

CONFIRMATIONS = 2
SENDERS = 3
LOAD_S = 6.0  # seconds of load after the node's first commit is deep enough to reorg around
TX_INTERVAL_S = 0.15  # per sender: about 20 tx/s in all
REORG_DEPTHS = (3, 5)


def _load(url: str, key: bytes, stop: threading.Event, accepted: list[str], errors: list[str]) -> None:
    nonce = 0
    while not stop.is_set():
        try:
            accepted.append(rpc_call(url, "eth_sendRawTransaction", [raw_transfer(key, nonce)]).lower())
            nonce += 1
        except Exception as e:  # noqa: BLE001 - a refused tx is counted, never retried blindly
            errors.append(f"{type(e).__name__}: {e}")
        stop.wait(TX_INTERVAL_S)


def _l1_head(l1_url: str) -> int:
    return int(rpc_call(l1_url, "eth_blockNumber"), 16)


def _recent_confirmed(url: str, from_block: int) -> tuple[int, str, int] | None:
    """(batch, step, L1 block) of a step the node counted done in an L1 block >= from_block."""
    top = int(rpc_call(url, "zks_L1BatchNumber", []), 16)
    for n in range(top, max(0, top - 8), -1):
        rec = rpc_call(url, "rollup_batch", [n]) or {}
        for step in ("commit", "prove", "execute"):
            r = rec.get(step) or {}
            if r.get("confirmed_at") and r["block_number"] >= from_block:
                return n, step, r["block_number"]
    return None


def _wait(pred, timeout_s: float, what: str, url: str):
    return wait_for(pred, timeout_s, what, url, poll_s=0.1)


def test_l1_reorgs_under_load_lose_nothing_and_recommit(epoch_l1, rollup_node_factory) -> None:
    node = rollup_node_factory(epoch_l1.url, l1_operator_key(), None,
                               ("--max-blocks", "3", "--max-seconds", "2",
                                "--l1-confirmations", str(CONFIRMATIONS)))
    url = node.url
    stop = threading.Event()
    accepted: list[list[str]] = [[] for _ in range(SENDERS)]
    refused: list[str] = []
    finalized_seen: list[int] = []

    watch_stop = threading.Event()

    def watch_finalized() -> None:
        while not watch_stop.is_set():
            try:
                finalized_seen.append(int(rpc_call(url, "eth_getBlockByNumber", ["finalized", False])["number"], 16))
            except Exception:  # noqa: BLE001 - a missed poll is no observation
                pass
            watch_stop.wait(0.25)

    loaders = [threading.Thread(target=_load, args=(url, derive_account(DEFAULT_MNEMONIC, 14 + i).key, stop,
                                                     accepted[i], refused), daemon=True) for i in range(SENDERS)]
    watcher = threading.Thread(target=watch_finalized, daemon=True)
    t_load0 = time.monotonic()
    for t in loaders + [watcher]:
        t.start()
    try:
        reorgs = []
        try:
            # the Rollup deployment must stay out of reach of the reorgs (one past it removes the contract): wait
            # until batch 1's commit counted and L1 is REORG_DEPTHS[1] + 1 blocks past it
            rec1 = _wait(lambda: (r := rpc_call(url, "rollup_batch", [1])) and r.get("commit") and r, 60,
                         "batch 1 not committed", url)
            _wait(lambda: _l1_head(epoch_l1.url) > rec1["commit"]["block_number"] + REORG_DEPTHS[1], 30, "L1 stalls", url)
            t_start = time.monotonic()
            # reorg 1: while a commit is mined but not yet CONFIRMATIONS deep
            def commit_awaiting() -> list[int] | None:
                return rpc_call(url, "rollup_status")["l1Settlement"]["awaitingConfirmation"]["commit"] or None

            pending = _wait(commit_awaiting, 30, "no commit awaiting confirmation", url)
            head = _l1_head(epoch_l1.url)
            rpc_call(epoch_l1.url, "anvil_reorg", [REORG_DEPTHS[0], []])
            reorgs.append({"depth": REORG_DEPTHS[0], "head": head, "commit_awaiting": pending})
            # reorg 2: once a step mined after reorg 1 has counted (CONFIRMATIONS deep), deep enough to undo it.
            # "After": above reorg 1's head (anvil_reorg keeps the height, so the blocks up to it are reorg 1's
            # empty ones); a record the node still holds for a block reorg 1 replaced is not that step
            first_after = head + 1
            step = _wait(lambda: _recent_confirmed(url, max(first_after, _l1_head(epoch_l1.url) - (REORG_DEPTHS[1] - 2))),
                         30, "no step confirmed after reorg 1", url)
            head = _l1_head(epoch_l1.url)
            rpc_call(epoch_l1.url, "anvil_reorg", [REORG_DEPTHS[1], []])
            reorgs.append({"depth": REORG_DEPTHS[1], "head": head, "confirmed_step": step})
            stop.wait(max(0.0, LOAD_S - (time.monotonic() - t_start)))
        finally:
            stop.set()
            for t in loaders:
                t.join(timeout=10)
        hashes = [h for a in accepted for h in a]
        assert hashes and not refused, (len(hashes), refused[:5])
        t_load_end = time.monotonic()

        # 0 accepted txs lost: each has an L2 receipt
        receipts = {h: _wait(lambda h=h: rpc_call(url, "eth_getTransactionReceipt", [h]), 30, f"no receipt for {h}", url)
                    for h in hashes}
        last_block = max(int(r["blockNumber"], 16) for r in receipts.values())
        blocks = sorted({int(r["blockNumber"], 16) for r in receipts.values()})

        # hard finality for every tx: its block executed on L1 (verified), then the finalized tag passes it
        _wait(lambda: rpc_call(url, "zks_getBlockDetails", [last_block])["status"] == "verified", 120,
              f"block {last_block} not verified", url)
        t_verified = time.monotonic()
        # the finalized tag follows L1's finalized block, not L1's latest: every batch it covers was executed
        # in an L1 block at or below L1's finalized block (read after the tag: L1's only moves forward)
        tag = int(rpc_call(url, "eth_getBlockByNumber", ["finalized", False])["number"], 16)
        l1_fin = int(rpc_call(epoch_l1.url, "eth_getBlockByNumber", ["finalized", False])["number"], 16)
        covered = [rpc_call(url, "rollup_batch", [n]) for n in range(1, int(rpc_call(url, "zks_L1BatchNumber", []), 16) + 1)]
        beyond = [(r["number"], r["execute"]["block_number"]) for r in covered
                  if r["last_block"] <= tag and r["execute"]["block_number"] > l1_fin]
        assert beyond == [], f"finalized tag {tag} covers batches executed above L1's finalized block {l1_fin}: {beyond}"
        tag_at_verified = tag
        _wait(lambda: finalized_seen and finalized_seen[-1] >= last_block, 60, "finalized tag did not pass the load", url)
        t_finalized = time.monotonic()
        watch_stop.set()
        watcher.join(timeout=5)
        not_verified = [b for b in blocks if rpc_call(url, "zks_getBlockDetails", [b])["status"] != "verified"]

        st = rpc_call(url, "rollup_status")
        l1 = RollupL1.attach(epoch_l1.url, st["rollupAddress"])
        totals = l1.totals()
        nbatches = int(rpc_call(url, "zks_L1BatchNumber", []), 16)
        recs = [rpc_call(url, "rollup_batch", [n]) for n in range(1, nbatches + 1)]
        lost = [(r["number"], e) for r in recs for e in r.get("l1_reorged", [])]
        recommitted = [(n, e) for n, e in lost if e["step"] == "commit" and not e["re_included"]]
        canon = l1.block_hashes([r["commit"]["block_number"] for r in recs if r.get("commit")])
        moved_back = [(a, b) for a, b in zip(finalized_seen, finalized_seen[1:], strict=False) if b < a]
        by_phase = {p: sum(e["phase"] == p for _, e in lost) for p in ("unconfirmed", "confirmed")}
        print(f"\n{len(hashes)} txs accepted in {t_load_end - t_load0:.0f} s, {len(blocks)} L2 blocks, {nbatches} batches; reorgs "
              f"{reorgs}; L1 steps lost: {len(lost)} ({by_phase}; commits re-sent: "
              f"{sorted({n for n, _ in recommitted})}); all verified {t_verified - t_load_end:.1f} s and finalized "
              f"tag past the load {t_finalized - t_load_end:.1f} s after the load ended (L1 finalized = latest - "
              f"{2 * EPOCH_L1_SLOTS}; when block {last_block} was verified the tag was at {tag_at_verified}); L1 totals {totals}; node counts {st['batches']}")

        assert not_verified == [], not_verified
        assert st["halted"] is None and st["batches"]["refused"] == 0, (st["halted"], st["batches"])
        assert recommitted, f"no commit was lost to the reorgs and re-sent: {lost}"
        assert by_phase["unconfirmed"] and by_phase["confirmed"], f"not both kinds of loss seen: {lost}"
        for n, e in recommitted:
            rec = recs[n - 1]
            on_l1 = l1.step_tx(n, "commit")
            assert rec["commit"]["tx_hash"] != e["tx_hash"] and on_l1.tx_hash == rec["commit"]["tx_hash"], (n, e, rec["commit"])
        assert all(canon[r["commit"]["block_number"]] == r["commit"]["block_hash"] for r in recs), "a commit record is off-chain"
        assert moved_back == [], f"the finalized tag moved back: {moved_back}"
        assert totals["executed"] == totals["committed"] == nbatches == st["batches"]["executed"], (totals, st["batches"])
        assert st["l1Totals"] == totals
    finally:
        watch_stop.set()
