"""Block observer: a ``newHeads`` subscription where the target offers one, else fast polling.

Runs in a thread of the controlling process. For every new block it records the local wall-clock time
(``time.time()``) at which the block was first seen, and the block's header timestamp, gas used, gas
limit and tx hashes. Works on any JSON-RPC chain.

Modes (``mode``): ``auto`` (default) subscribes to ``newHeads`` over WebSocket (``ws_url``, default the
HTTP URL's host and port: anvil and this repo's node serve both there) and falls back to polling when
the target does not offer it (no WebSocket, handshake or subscription refused) or when the connection
drops mid-run, saying why (``fallback_reason``); ``newHeads`` requires the subscription (no fallback at
start: :class:`ObservationError`); ``poll`` polls ``eth_blockNumber`` + ``eth_getBlockByNumber(n, false)``
every ``poll_s``.

newHeads: a block is seen when its head is pushed (the reader thread's timestamp), or when a heartbeat's
``eth_blockNumber`` read it, if that came first (a node publishing its heads late); its tx hashes are then
fetched by ``eth_getBlockByNumber``. Gap detection: a push whose number skips blocks, or a heartbeat
(``eth_blockNumber`` every ``heartbeat_s``) reporting a block that no push carried within
``gap_grace_s``, has the missed blocks fetched by number; they are counted (``gaps``) and marked
``via='gap'`` (``late-push`` when their push arrived after all: it was late, not lost; the block keeps
the time it was first seen). Resolution of a pushed block: the connection's round trip (WebSocket ping at every
heartbeat); :meth:`observation` also reports the push spacing and how far pushes lagged the same block's
first report by ``eth_blockNumber`` (the server's own publication delay). Polling: the poll interval
plus one round trip, per block (``prev_poll_s``).
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from dataclasses import replace
from typing import Any, Literal

from harness.chain.metrics import BlockObs
from harness.chain.observe_ws import NewHeadsSubscription, SubscriptionUnavailable
from harness.chain.rpc import Rpc, to_int, ws_url_for

ObserveMode = Literal["auto", "newHeads", "poll"]


class ObservationError(AssertionError):
    """The observer could not see every block of the run in time (it stopped, or saw blocks too late)."""


def _q(xs: list[float]) -> dict[str, Any] | None:
    if not xs:
        return None
    s = sorted(xs)
    return {"n": len(s), "p50_s": statistics.median(s), "min_s": s[0], "max_s": s[-1]}


class BlockObserver:
    """Observes ``url`` for new blocks from the one after ``start_block`` (latest at start()).

    No block is ever skipped (the cursor only moves past blocks actually fetched; a block the node
    reports as null is retried). Every error is kept in ``errors`` (local time, message); ``failure`` is
    set if the thread gave up (too many errors, its duration cap): the caller must then fail the run.
    Each block carries ``prev_poll_s`` (the resolution of its inclusion time:
    ``BlockObs.seen_uncertainty_s``) and ``via`` (``newHeads``, ``gap`` or ``poll``).
    """

    def __init__(
        self, url: str, poll_s: float = 0.02, max_duration_s: float = 3600.0, max_errors: int = 1000,
        mode: ObserveMode = "auto", ws_url: str | None = None, heartbeat_s: float = 0.25,
        gap_grace_s: float = 1.0, subscribe_timeout_s: float = 5.0,
    ):
        if mode not in ("auto", "newHeads", "poll"):
            raise ValueError(f"observer mode must be auto, newHeads or poll, got {mode!r}")
        self.url = url
        self.poll_s = poll_s
        self.max_duration_s = max_duration_s
        self.max_errors = max_errors
        self.mode = mode
        self.ws_url = ws_url or (ws_url_for(url) if mode != "poll" else None)
        self.heartbeat_s, self.gap_grace_s, self.subscribe_timeout_s = heartbeat_s, gap_grace_s, subscribe_timeout_s
        self.blocks: dict[int, BlockObs] = {}
        self.errors: list[tuple[float, str]] = []
        self.failure: str | None = None
        self.start_block: int | None = None
        self.polls = 0
        self.last_poll_s: float | None = None  # local time of the last successful poll / push / heartbeat
        self.mode_used: str | None = None  # "newHeads" or "poll" (after a fallback: "poll")
        self.fallback_reason: str | None = None
        self.fallback_at_s: float | None = None
        self.pushes = 0
        self.stale_pushes = 0  # pushes of a block at or below the cursor (a re-sent or reorged head)
        self.gaps: list[int] = []  # block numbers no push carried in time: fetched by number
        self.late_pushes: dict[int, float] = {}  # gap block -> how long after its first sighting its push came
        self.push_times: list[float] = []
        self.ping_rtts: list[float] = []
        self.push_behind_poll: list[float] = []
        self._sub: NewHeadsSubscription | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> BlockObserver:
        if self.mode != "poll":  # subscribe before reading the start block: every later block gets a push
            try:
                self._sub = NewHeadsSubscription.open(self.ws_url, self.subscribe_timeout_s)
            except SubscriptionUnavailable as e:
                if self.mode == "newHeads":
                    raise ObservationError(f"newHeads required, but: {e}") from e
                self.fallback_reason = str(e)
        self.mode_used = "newHeads" if self._sub is not None else "poll"
        with Rpc(self.url) as rpc:
            self.start_block = to_int(rpc.call("eth_blockNumber"))
        self._t_start = self.last_poll_s = time.time()
        if self._sub is not None:
            rtt = self._sub.ping_rtt()
            if rtt is not None:
                self.ping_rtts.append(rtt)
        self._thread = threading.Thread(target=self._run, name="block-observer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[BlockObs]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._sub is not None:
            self._sub.close()
        return self.snapshot()

    def drop_subscription_for_test(self) -> None:
        """Close the WebSocket under the running observer (as a dropped connection would): it falls back."""
        if self._sub is not None:
            self._sub._ws.close()  # noqa: SLF001 - the reader sees the close like any drop

    # -- the thread ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        rpc = Rpc(self.url, timeout_s=10.0)
        deadline = time.monotonic() + self.max_duration_s
        try:
            last, prev = self.start_block, self._t_start
            if self._sub is not None:
                last, prev = self._run_newheads(rpc, deadline)
            if not self._stop.is_set() and not self.failure:
                self._run_poll(rpc, deadline, last, prev)
        finally:
            rpc.close()

    def _error(self, e: BaseException) -> bool:
        """Record ``e``; True if the observer must give up."""
        self.errors.append((time.time(), repr(e)))
        if len(self.errors) >= self.max_errors:
            self.failure = f"observer gave up after {len(self.errors)} failed polls: {e!r}"
            return True
        return False

    def _record(self, rpc: Rpc, nums: list[int], seen: float, prev: float | None, via: str) -> int:
        """Fetch blocks ``nums`` (ascending) and record them; how many were recorded (stops at the first
        the node does not serve yet)."""
        got = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in nums])
        done = 0
        with self._lock:
            for n, b in zip(nums, got, strict=False):
                if b is None:  # reported, not served yet: next time
                    break
                self.blocks[n] = BlockObs(
                    number=n, seen_s=seen, timestamp=to_int(b["timestamp"]), gas_used=to_int(b["gasUsed"]),
                    gas_limit=to_int(b["gasLimit"]), tx_hashes=tuple(b.get("transactions") or ()),
                    prev_poll_s=prev, via=via,
                )
                done += 1
        return done

    def _late_push(self, n: int, seen: float) -> None:
        """Block ``n``, fetched as a gap, was pushed after all (later than the heartbeat that first read it):
        it stays timed by that heartbeat (first seen), now marked ``late-push``; the lag is recorded."""
        with self._lock:
            b = self.blocks[n]
            self.blocks[n] = replace(b, via="late-push")
        self.late_pushes[n] = seen - b.seen_s
        self.push_behind_poll.append(max(0.0, seen - b.seen_s))

    def _record_gaps(self, rpc: Rpc, missed: range, seen: float, prev: float,
                     reported: dict[int, tuple[float, float]]) -> int:
        """Fetch blocks no push carried, one by one in order (stops at the first not served); each is
        seen when a heartbeat first reported it (else ``seen``), after the heartbeat before that (else
        ``prev``). How many were recorded; their numbers go to ``gaps``."""
        done = 0
        for k in missed:
            t_k, prev_k = reported.get(k, (seen, prev))
            if not self._record(rpc, [k], min(seen, t_k), prev_k, "gap"):
                break
            reported.pop(k, None)
            self.gaps.append(k)
            done += 1
        return done

    def _run_poll(self, rpc: Rpc, deadline: float, last: int, prev_poll: float) -> None:
        while not self._stop.is_set():
            if time.monotonic() > deadline:
                self.failure = f"observer stopped at its {self.max_duration_s:.0f} s duration cap"
                break
            try:
                head = to_int(rpc.call("eth_blockNumber"))
                seen = time.time()
                if head > last:
                    last += self._record(rpc, list(range(last + 1, head + 1)), seen, prev_poll, "poll")
                self.polls += 1
                self.last_poll_s = seen
                if last == head:  # every block up to head is recorded: this poll saw them all
                    prev_poll = seen
            except Exception as e:  # noqa: BLE001 - recorded; the poll is retried, no block is skipped
                if self._error(e):
                    break
            self._stop.wait(self.poll_s)

    def _run_newheads(self, rpc: Rpc, deadline: float) -> tuple[int, float]:
        """Consume pushes until stopped or the connection drops (then: fall back, return the cursor)."""
        sub = self._sub
        last, prev = self.start_block, self._t_start
        # block -> (when a heartbeat's eth_blockNumber first reported it, the heartbeat before that one)
        reported: dict[int, tuple[float, float]] = {}
        prev_hb = self._t_start
        hb_head = self.start_block  # the head the last heartbeat read (a later block appeared after prev_hb)
        next_hb = time.monotonic() + self.heartbeat_s
        # the ping runs beside the heartbeat: a pong held up by a loaded server (up to its 1 s timeout)
        # stretched the heartbeat interval, the resolution of the blocks a heartbeat reports first, past 1 s
        sub.start_pinger(self.heartbeat_s, min(2.0, 4 * self.heartbeat_s), self.ping_rtts)
        while not self._stop.is_set():
            if time.monotonic() > deadline:
                self.failure = f"observer stopped at its {self.max_duration_s:.0f} s duration cap"
                break
            try:
                item = sub.heads.get(timeout=max(0.0, min(next_hb - time.monotonic(), 0.1)))
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    seen, head, dropped = item
                    if head is None:
                        if self._stop.is_set() or sub.closing:
                            break
                        self.fallback_reason = (f"newHeads connection dropped after {self.pushes} push(es), "
                                                f"at block {last}: {dropped}; polling from there")
                        self.fallback_at_s = seen
                        self.mode_used = "poll"
                        return last, prev
                    n = to_int(head.get("number"))
                    self.pushes += 1
                    self.push_times.append(seen)
                    if n is None or n <= last:
                        self.stale_pushes += 1
                        if n in self.blocks and self.blocks[n].via == "gap":  # its push came after all
                            self._late_push(n, seen)
                    else:
                        if n > last + 1:  # skipped blocks: fetched by number, counted
                            # a block no heartbeat reported yet appeared after the last push and heartbeat
                            last += self._record_gaps(rpc, range(last + 1, n), seen, max(prev, prev_hb), reported)
                        if last == n - 1:
                            rtt = self.ping_rtts[-1] if self.ping_rtts else 0.0
                            first, before = seen, seen - rtt
                            if n in reported:  # a heartbeat read it before the push came: first seen then
                                t_rep, prev_rep = reported.pop(n)
                                self.push_behind_poll.append(max(0.0, seen - t_rep))
                                if t_rep < seen:
                                    first, before = t_rep, prev_rep
                            last += self._record(rpc, [n], first, before, "newHeads")
                        prev = seen
                    self.last_poll_s = seen
                if time.monotonic() >= next_hb:
                    next_hb = time.monotonic() + self.heartbeat_s
                    head_n = to_int(rpc.call("eth_blockNumber"))
                    t_hb = time.time()
                    self.polls += 1
                    for k in range(max(last, hb_head) + 1, head_n + 1):
                        reported.setdefault(k, (t_hb, prev_hb))
                    for k in [k for k in reported if k <= last]:
                        del reported[k]
                    stale = [k for k, (t, _) in reported.items() if t_hb - t >= self.gap_grace_s]
                    if stale:  # reported by eth_blockNumber, never pushed: a missed push
                        last += self._record_gaps(rpc, range(last + 1, max(stale) + 1), t_hb, prev_hb, reported)
                    prev_hb, hb_head = t_hb, head_n
                    self.last_poll_s = t_hb
            except Exception as e:  # noqa: BLE001 - recorded; a block not recorded is fetched later as a gap
                if self._error(e):
                    break
        return last, prev

    # -- results ---------------------------------------------------------------------------------------------
    def observation(self, numbers: set[int] | None = None) -> dict[str, Any]:
        """Which mode observed the blocks (of ``numbers``, default all) and at what resolution:
        ``{"mode", "resolution_s", "fallback_reason", ...}``. ``resolution_s`` / ``resolution_max_s``: the
        median / largest ``seen_s - prev_poll_s`` of those blocks (pushed: the connection's ping round trip
        at the push; polled: the poll interval + a round trip; a gap block: since the heartbeat or push
        before it); with newHeads also ``push_behind_poll_s`` (how long after ``eth_blockNumber`` first
        reported a block its push arrived: the server's own publication delay), ``push_spacing_s`` and
        ``ping_rtt_s``."""
        with self._lock:
            bs = [b for b in self.blocks.values() if numbers is None or b.number in numbers]
        via: dict[str, int] = {}
        for b in bs:
            via[b.via or "?"] = via.get(b.via or "?", 0) + 1
        unc = [b.seen_uncertainty_s for b in bs if b.seen_uncertainty_s is not None]
        poll_unc = [b.seen_uncertainty_s for b in bs if b.via == "poll" and b.seen_uncertainty_s is not None]
        spacing = [b - a for a, b in zip(self.push_times, self.push_times[1:], strict=False)]
        run_gaps = [n for n in self.gaps if numbers is None or n in numbers]
        return {
            "mode": self.mode_used, "resolution_s": statistics.median(unc) if unc else None,
            "resolution_max_s": max(unc) if unc else None, "fallback_reason": self.fallback_reason,
            "requested": self.mode, "ws_url": self.ws_url, "blocks": len(bs), "blocks_by": via,
            "gaps": len(run_gaps), "gap_blocks": run_gaps[:20], "gaps_all_blocks": len(self.gaps),
            "gaps_never_pushed": [n for n in run_gaps if n not in self.late_pushes][:20],
            "late_pushes": len([n for n in run_gaps if n in self.late_pushes]),
            "late_push_lag_s": _q([self.late_pushes[n] for n in run_gaps if n in self.late_pushes]),
            "pushes": self.pushes, "stale_pushes": self.stale_pushes, "push_spacing_s": _q(spacing),
            "ping_rtt_s": _q(self.ping_rtts), "push_behind_poll_s": _q(self.push_behind_poll),
            "poll_interval_s": self.poll_s,
            "poll_resolution_s": _q(poll_unc), "heartbeat_s": self.heartbeat_s if self.pushes or self._sub else None,
        }

    def check(self, max_uncertainty_s: float | None = None, numbers: set[int] | None = None) -> None:
        """Raise :class:`ObservationError` if the thread gave up, or if a block (of ``numbers``, default
        all) was seen more than ``max_uncertainty_s`` after the previous observation that missed it."""
        if self.failure:
            raise ObservationError(f"{self.failure}; last errors: {[m for _, m in self.errors[-3:]]}")
        if max_uncertainty_s is None:
            return
        with self._lock:
            late = [
                (b.number, b.seen_uncertainty_s)
                for b in self.blocks.values()
                if (numbers is None or b.number in numbers)
                and b.seen_uncertainty_s is not None
                and b.seen_uncertainty_s > max_uncertainty_s
            ]
        if late:
            shown = ", ".join(f"#{n}: {u:.2f} s" for n, u in sorted(late)[:10])
            raise ObservationError(
                f"{len(late)} block(s) seen more than {max_uncertainty_s:g} s after the previous observation "
                f"({shown}; mode {self.mode_used}, {len(self.gaps)} gap(s)); {len(self.errors)} failed "
                f"poll(s), last: {[m for _, m in self.errors[-3:]]}"
            )

    def seen_hashes(self) -> set[str]:
        with self._lock:
            return {h for b in self.blocks.values() for h in b.tx_hashes}

    def snapshot(self) -> list[BlockObs]:
        with self._lock:
            return sorted(self.blocks.values(), key=lambda b: b.number)
