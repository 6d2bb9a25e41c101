"""Settlement on confirmed L1 state: confirmation depth, reorg detection, L1's finalized block.

A stage (committer, prover, executor) that got a receipt hands it to the :class:`Confirmer`
(``Pipeline._submitted``) and moves on to the next batch, so L1 txs stay pipelined. The confirmer's
thread reads L1's head every ``NodeConfig.l1_poll_s`` and, per step in batch order:

* the receipt's block must still be canonical: the hash L1 now has at that height is re-read and compared
  with the receipt's ``blockHash``;
* once ``head - receipt block >= l1_confirmations`` (and still canonical) the step counts as done
  (``Pipeline._advance``: the batch's status moves on, the record gets ``confirmed_at``,
  ``confirmations`` and ``confirm_wait_s``; ``at`` stays the local receipt time, as before);
* a receipt whose block is no longer canonical: L1's state is read for the batch. If the step is still
  done there (the tx was mined again in another block) its record is rebuilt from L1 and confirmed anew;
  if not, the loss is recorded (``l1_reorged`` in the batch record, ``rollup_status.l1Reorgs``) and the
  stage sends it again.

About once a second it also reads L1's ``finalized`` block (the node's ``finalized`` tag follows it) and
re-checks the blocks of every step already counted done above it: a reorg deeper than the confirmation
depth demotes the batch to the status L1 now has for it (the undone steps move to ``l1_reorged``) and the
stages send them again; receipts of later steps still awaiting confirmation go with it (mined after it,
so gone too) and are recorded as lost as well. A commit or prove undone restarts the prover (its replay
tree and engine are past that batch). None of this is a halt: only re-execution disagreeing with L1's
published data halts.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.rollup.batcher import Pipeline

log = logging.getLogger("rollup.confirm")

#: step -> (status it moves a batch from, status it moves it to, L1 totals key / batch flag)
STEP_STATUS = {"commit": ("sealed", "committed", "committed"), "prove": ("committed", "proven", "proven"),
               "execute": ("proven", "executed", "executed")}
ORDER = ("sealed", "committed", "proven", "executed")
#: how far below L1's head the deep re-check looks at most (blocks), when L1 finalizes nothing sooner
SCAN_WINDOW_BLOCKS = 256
STALL_S = 15.0
SCAN_EVERY_TICKS = 4  # with l1_poll_s 0.25: L1's finalized block and the deep re-check once a second


@dataclass
class Pending:
    step: str
    n: int
    result: dict  # l1_result / recovered_l1_result: block_number, block_hash, tx_hash, at, ...
    timings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


class L1Steps:
    """The Pipeline's side of an L1 step: pick the batch to send, send it (retried), hand the receipt to the
    confirmer, record the step once it counts (mixed into harness.rollup.batcher.Pipeline)."""

    lock: Any
    batches: dict[int, dict]
    confirmer: Confirmer
    cfg: Any
    l1: Any
    l1_totals: dict[str, int]
    wake: Any
    save: Callable[[dict], None]
    _retry: Callable[..., Any]
    _l1_done: Callable[[str, int], Callable[[], bool]]

    def _next_to_send(self, step: str) -> dict | None:
        """The lowest batch waiting for ``step`` whose tx is not already awaiting confirmation."""
        frm = STEP_STATUS[step][0]
        with self.lock:
            for n in sorted(self.batches):
                if self.batches[n]["status"] == frm and n not in self.confirmer.inflight[step]:
                    return copy.deepcopy(self.batches[n])
        return None

    def _not_next(self, step: str, n: int) -> Callable[[], bool]:
        def changed() -> bool:
            nxt = self._next_to_send(step)
            return nxt is None or nxt["number"] != n
        return changed

    def _send_step(self, step: str, what: str, n: int, send: Callable[[], Any],
                   abort: Callable[[], bool]) -> tuple[dict, bool]:
        """Send one L1 step (retried); a step L1 already has (a crash, a lost receipt, a retry after it went
        through) is rebuilt from L1. Returns (the step's record, rebuilt from L1?)."""
        total = STEP_STATUS[step][2]
        while True:
            from harness.rollup.batcher import l1_result, recovered_l1_result

            res = self._retry(what, send, done=self._l1_done(total, n), abort=abort)
            if res is not None:
                return l1_result(res), False
            got = self._retry(f"recover_{step}", lambda: self.l1.step_tx(n, step), abort=abort)
            if got is not None:
                return recovered_l1_result(got), True
            log.warning("batch %d: L1 said %s done, then had no record of it (a reorg?): sending again", n, step)

    def _submitted(self, step: str, n: int, result: dict, timings: dict, extra: dict | None = None) -> None:
        """A step's tx is mined: with 0 confirmations it is done now, else the confirmer decides."""
        if self.cfg.l1_confirmations == 0:
            self._advance(step, n, result, timings, extra or {})
        else:
            self.confirmer.add(step, n, result, timings, extra or {})

    def _advance(self, step: str, n: int, result: dict, timings: dict, extra: dict) -> bool:
        """Record ``step`` of batch ``n`` as done (status moves on) unless a reorg moved the batch since."""
        frm, to, total = STEP_STATUS[step]
        with self.lock:
            cur = self.batches.get(n)
            if cur is None or cur["status"] != frm:
                log.info("batch %d: %s done on L1 but the batch is %s now; not recorded", n, step,
                         cur and cur["status"])
                return False
            rec = copy.deepcopy(cur)
            rec[step] = result
            rec["timings"].update(timings)
            rec.update(extra)
            rec["status"] = to
            self.save(rec)
            self.l1_totals[total] = max(self.l1_totals.get(total, 0), n)
        self.wake.set()
        return True


class Confirmer:
    """The L1 confirmation thread (see the module docstring); ``inflight``: step -> batch -> receipt awaiting
    its confirmations."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.inflight: dict[str, dict[int, Pending]] = {s: {} for s in STEP_STATUS}
        self.reorgs: list[dict] = []  # every loss seen (also in the batch records), newest last
        self.reorg_count = 0
        self.finalized: int | None = None  # L1's finalized block number, as last read
        self.finalized_source: str | None = None
        self.head: int | None = None
        self._ticks = 0
        self._dirty = False  # a receipt was added since the last tick
        self._head_moved_at = time.time()

    # -- called by the stages ------------------------------------------------------------------------------
    def add(self, step: str, n: int, result: dict, timings: dict, extra: dict) -> None:
        with self.p.lock:
            self.inflight[step][n] = Pending(step, n, result, dict(timings), dict(extra))
            self._dirty = True

    def is_inflight(self, step: str, n: int) -> bool:
        with self.p.lock:
            return n in self.inflight[step]

    # -- the thread ----------------------------------------------------------------------------------------
    def run(self) -> None:
        delay = self.p.cfg.l1_poll_s
        while not self.p.stop_event.is_set():
            try:
                self.tick()
                self.p.errors.pop("confirm", None)
                delay = self.p.cfg.l1_poll_s
            except Exception as e:  # noqa: BLE001 - L1 unreachable or lagging: read again later
                self.p.errors["confirm"] = f"{type(e).__name__}: {e}"
                log.warning("confirmer: %s; again in %.2f s", e, delay)
                delay = min(max(delay * 2, 0.25), self.p.cfg.l1_retry_max_s)
            self.p.stop_event.wait(delay)

    def tick(self) -> None:
        l1 = self.p.l1
        head = l1.head()
        now = time.time()
        if head != self.head:
            self._head_moved_at = now
        changed, self._dirty = head != self.head or self._dirty, False
        self.head = head
        with self.p.lock:
            waiting = any(self.inflight.values())
        if waiting and now - self._head_moved_at > STALL_S:  # an L1 that mines only on txs (automine) never
            self.p.errors["confirm_stall"] = (  # builds the blocks a confirmation needs: say so
                f"L1 head {head} has not moved for {now - self._head_moved_at:.0f} s while L1 txs await "
                f"{self.p.cfg.l1_confirmations} confirmations (an L1 that mines only when txs arrive? run it with "
                f"a block time, or the node with --l1-confirmations 0)")
        else:
            self.p.errors.pop("confirm_stall", None)
        depth = self.p.cfg.l1_confirmations
        for step in STEP_STATUS if changed else ():  # same head, nothing new sent: nothing to look at
            with self.p.lock:
                items = sorted(self.inflight[step].items())
            if not items:
                continue
            hashes = l1.block_hashes([q.result["block_number"] for _, q in items])
            for n, q in items:
                bn = q.result["block_number"]
                h = hashes.get(bn)
                waited = time.time() - float(q.result.get("at") or time.time())
                if waited > 20 and self._ticks % 40 == 0:
                    log.warning("batch %d %s tx %s awaits confirmation for %.0f s: block %s (%s), L1 head %d has "
                                "%s there", n, step, q.result.get("tx_hash"), waited, bn, q.result.get("block_hash"),
                                head, h)
                if h is None:
                    break  # L1 has no block at that height now (a lagging read): unknown, look again
                if h != q.result.get("block_hash"):
                    self._lost_unconfirmed(q)
                    self._dirty = True  # look at the rebuilt / re-sent ones again next tick
                    break
                if head - bn < depth:
                    break  # later steps are in later blocks: not deep enough either
                now = time.time()
                q.result.update(confirmed_at=now, confirmations=head - bn,
                                confirm_wait_s=max(0.0, now - float(q.result.get("at") or now)))
                with self.p.lock:
                    self.inflight[step].pop(n, None)
                self.p._advance(step, n, q.result, q.timings, q.extra)
        self._ticks += 1
        if self._ticks % SCAN_EVERY_TICKS == 1 or SCAN_EVERY_TICKS <= 1:
            self._read_finalized(head)
            self._deep_scan(head)

    # -- L1's finalized block ------------------------------------------------------------------------------
    def _read_finalized(self, head: int) -> None:
        fin = self.p.l1.finalized_block()
        if fin is None:  # an L1 without the tag: what this node itself treats as settled
            fin, src = max(0, head - self.p.cfg.l1_confirmations), "latest - l1_confirmations (no finalized tag)"
        else:
            src = "L1 finalized tag"
        if self.finalized is None or fin >= self.finalized:  # never moves back (a lagging read)
            self.finalized, self.finalized_source = fin, src

    # -- losses --------------------------------------------------------------------------------------------
    def _record(self, n: int, step: str, result: dict, phase: str, re_included: bool,
                cause: str | None = None) -> None:
        entry = {"step": step, "batch": n, "tx_hash": result.get("tx_hash"),
                 "block_number": result.get("block_number"), "block_hash": result.get("block_hash"),
                 "phase": phase, "re_included": re_included, "detected_at": time.time()}
        if cause:
            entry["cause"] = cause
        self.reorg_count += 1
        self.reorgs = (self.reorgs + [entry])[-50:]
        with self.p.lock:
            cur = self.p.batches.get(n)
            if cur is not None:
                rec = copy.deepcopy(cur)
                rec.setdefault("l1_reorged", []).append(entry)
                self.p.save(rec)
        log.warning("L1 reorg: batch %d %s tx %s (block %s) no longer canonical (%s)%s", n, step,
                    entry["tx_hash"], entry["block_number"], phase,
                    "; mined again, rebuilt from L1" if re_included else "; sending it again")

    def _rebuild(self, n: int, step: str) -> dict | None:
        """The step's record from L1 if L1 (as read now) has the step done, else None."""
        from harness.rollup.batcher import recovered_l1_result

        on = self.p.l1.batch(n)
        if not on[STEP_STATUS[step][2]]:
            return None
        got = self.p.l1.step_tx(n, step)
        return recovered_l1_result(got) if got is not None else None

    def _drop_inflight(self, steps: tuple[str, ...], n: int) -> None:
        """Batch ``n``'s ``steps[0]`` was lost: forget the receipts awaiting confirmation for ``steps`` of
        batches >= n (the stages send them again). Each was mined after the lost step (L1 takes a batch's
        steps in order), so the reorg that undid it took them too; each loss is recorded like any other (a
        later receipt never vanishes unrecorded), unless its block is somehow still canonical (then it is only
        logged; the stage's send finds it done on L1)."""
        lost = (steps[0], n)
        with self.p.lock:
            dropped = [self.inflight[s].pop(m) for s in steps for m in sorted(self.inflight[s]) if m >= n]
        dropped = [q for q in dropped if (q.step, q.n) != lost]
        if not dropped:
            return
        try:
            hashes = self.p.l1.block_hashes(sorted({q.result["block_number"] for q in dropped}))
        except Exception as e:  # noqa: BLE001 - L1 unreadable now: counted as lost (the stage sends it again)
            log.warning("could not re-read the blocks of %d dropped receipts: %s", len(dropped), e)
            hashes = {}
        cause = f"mined after batch {lost[1]} {lost[0]}, which the reorg undid"
        for q in dropped:
            if hashes.get(q.result["block_number"]) == q.result.get("block_hash"):
                log.warning("batch %d %s tx %s awaited confirmation in a block L1 still has, after batch %d %s was "
                            "undone: sent again", q.n, q.step, q.result.get("tx_hash"), lost[1], lost[0])
                continue
            self._record(q.n, q.step, q.result, "unconfirmed", False, cause)

    def _maybe_reset_prover(self, step: str, n: int) -> None:
        """The prover's replay tree holds batches 1..prover_done: undoing a commit or proof among them sends
        it back to the start (a batch it is working on now is caught by its own status check)."""
        if step in ("commit", "prove") and n <= self.p.prover_done:
            self.p.prover_reset.set()

    def _lost_unconfirmed(self, q: Pending) -> None:
        again = self._rebuild(q.n, q.step)
        self._record(q.n, q.step, q.result, "unconfirmed", again is not None)
        if again is not None:
            q.result = again  # confirm the new block instead
            return
        self._drop_inflight((q.step,), q.n)
        self._maybe_reset_prover(q.step, q.n)
        self.p.wake.set()

    def _deep_scan(self, head: int) -> None:
        """Re-check the blocks of steps counted done above L1's finalized block (reorgs deeper than the
        confirmation depth)."""
        floor = max(self.finalized or 0, head - SCAN_WINDOW_BLOCKS)
        with self.p.lock:
            checks = [(n, s, dict(r[s])) for n, r in sorted(self.p.batches.items())
                      if r["status"] in ORDER[1:] for s in STEP_STATUS
                      if ORDER.index(r["status"]) >= ORDER.index(STEP_STATUS[s][1])
                      and (r.get(s) or {}).get("block_hash") and (r[s].get("block_number") or 0) > floor]
        if not checks:
            return
        hashes = self.p.l1.block_hashes([res["block_number"] for _, _, res in checks])
        for n, step, res in checks:
            h = hashes.get(res["block_number"])
            if h is None or h == res["block_hash"]:
                continue
            with self.p.lock:
                cur = self.p.batches.get(n) or {}
                if (cur.get(step) or {}).get("block_hash") != res["block_hash"]:
                    continue  # already handled (an earlier step of this batch was demoted)
            self._lost_confirmed(n, step, res)

    def _lost_confirmed(self, n: int, step: str, res: dict) -> None:
        again = self._rebuild(n, step)
        self._record(n, step, res, "confirmed", again is not None)
        with self.p.lock:
            cur = self.p.batches.get(n)
            if cur is None:
                return
            rec = copy.deepcopy(cur)
            if again is not None:
                rec[step] = again
                self.p.save(rec)
                return
            steps = tuple(STEP_STATUS)[tuple(STEP_STATUS).index(step):]
            for s in steps:
                if s in rec:
                    rec.setdefault("l1_undone", []).append({"step": s, **rec.pop(s)})
            new_status = STEP_STATUS[step][0]
            if ORDER.index(rec["status"]) > ORDER.index(new_status):
                rec["status"] = new_status
            self.p.save(rec)
            for _, _, key in (STEP_STATUS[s] for s in steps):
                self.p.l1_totals[key] = min(self.p.l1_totals.get(key, 0), n - 1)
        self._drop_inflight(steps, n)
        self._maybe_reset_prover(step, n)
        self.p.wake.set()

    def status(self) -> dict[str, Any]:
        with self.p.lock:
            inflight = {s: sorted(d) for s, d in self.inflight.items()}
        return {"confirmations": self.p.cfg.l1_confirmations, "head": self.head, "finalized": self.finalized,
                "finalizedSource": self.finalized_source, "awaitingConfirmation": inflight,
                "reorgsSeen": self.reorg_count, "recent": self.reorgs[-10:]}
