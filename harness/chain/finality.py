"""Client-side finality tracker for any L2, by JSON-RPC URL.

Two ways to see finality, picked by ``mode``:

* ``"zks"`` — ZKsync's ``zks_getBlockDetails(n)``: a block's batch is *committed*, *proven* and
  *executed* on L1 when ``committedAt`` / ``provenAt`` / ``executedAt`` become non-null. ZKsync returns
  ISO-8601 UTC strings; the embedded node (harness/rollup) also returns the same instants as float unix
  seconds (``committedAtUnix`` ...), which are preferred when present (sub-second, no parsing).
* ``"tags"`` — the standard block tags: a block is *safe* / *finalized* once
  ``eth_getBlockByNumber("safe" | "finalized")`` returns a number >= it. The chain reports no instant,
  so the time recorded is the local time this tracker first observed it (resolution = ``poll_s``).
* ``"auto"`` — ``zks`` if the node answers ``zks_getBlockDetails``, else ``tags``.

On a ZKsync-API target (it answers ``zks_L1BatchNumber``) tags mode polls ZKsync's tags,
``l1_committed`` and ``finalized`` (zksync-era's ``BlockNumber`` enum: ZKsync has no ``safe``); on any
other target the standard ``safe`` and ``finalized``. The stage names stay ``safe`` / ``finalized``.

A target that answers ``zks_getBlockDetails`` but not ``zks_getL1BatchDetails`` (anvil-zksync's shape:
every commit/prove/execute field null, no L1 behind it) has no L1 settlement to wait for:
:attr:`FinalityTracker.no_settlement` says why, and :meth:`FinalityTracker.wait_blocks` raises
:class:`NoSettlementData` at once instead of polling until the timeout.

Every time is seconds on the local wall clock (``time.time()``, float, sub-second), the clock the load
generator uses for submit times and the block observer for inclusion ("soft finality"). For every stage
the tracker keeps both the node-reported instant (zks mode; None in tags mode) and the local instant it
first observed the stage; the stage time used for analysis (``BlockFinality.times``) is the reported one
when the node gives it, else the observed one.

Polling is bounded: :class:`FinalityTimeout` (carrying the partial records) when the timeout passes, and
:class:`NodeUnreachable` with the URL when the node stops answering.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.chain.rpc import Rpc, RpcError, RpcTransportError, to_int

Mode = Literal["zks", "tags", "auto"]
ZKS_STAGES = ("committed", "proven", "executed")
TAG_STAGES = ("safe", "finalized")
METHOD_NOT_FOUND = -32601


class FinalityError(RuntimeError):
    """The node cannot be tracked (unsupported API, bad reply, bad input)."""


class NodeUnreachable(FinalityError):
    """The node at the URL does not answer (connection refused, timeouts)."""


class NoSettlementData(FinalityError):
    """The target serves ZKsync's API without L1 settlement data (anvil-zksync): no stage past soft."""


class FinalityTimeout(FinalityError):
    """Not every block/tx reached the requested stage in time. ``partial`` holds what was seen."""

    def __init__(self, message: str, partial: Any):
        super().__init__(message)
        self.partial = partial


def parse_time(value: Any) -> float | None:
    """A finality instant as unix seconds (float): None/float/int pass through, ISO-8601 is parsed.

    Accepts ZKsync's ``2024-05-01T12:00:00.123456Z`` (also with more than 6 fraction digits, which are
    truncated to microseconds, and with a ``+hh:mm`` offset; a naive string is taken as UTC).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise FinalityError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise FinalityError(f"not a time: {value!r}")
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # truncate fractional seconds beyond microseconds (fromisoformat accepts at most 6 digits)
    if "." in s:
        head, _, rest = s.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        s = f"{head}.{(digits + '000000')[:6]}{rest[i:]}"
    try:
        t = _dt.datetime.fromisoformat(s)
    except ValueError:
        raise FinalityError(f"not an ISO-8601 time: {value!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.timestamp()


@dataclass
class BlockFinality:
    """Finality of one L2 block. Times: local wall-clock unix seconds.

    ``times[stage]``: the instant used for analysis (node-reported when available, else observed);
    ``reported[stage]``: what the node said (zks mode); ``observed[stage]``: when this tracker first
    saw the stage reached. ``batch``: the L1 batch number (zks mode), when the node says.
    """

    number: int
    mode: str
    batch: int | None = None
    times: dict[str, float] = field(default_factory=dict)
    reported: dict[str, float] = field(default_factory=dict)
    observed: dict[str, float] = field(default_factory=dict)

    def reached(self, stage: str) -> bool:
        return stage in self.times


@dataclass
class TxFinality:
    """One transaction's life, in local wall-clock unix seconds (None: not reached / not applicable).

    ``submit_s``: just before the request carrying it was sent (load generator);
    ``soft_s``: first local observation of its inclusion in an L2 block;
    ``committed_s``/``proven_s``/``executed_s``: its batch's L1 steps (zks mode);
    ``safe_s``/``finalized_s``: the block tags passing its block (tags mode).
    """

    tx_hash: str
    block_number: int
    submit_s: float | None
    soft_s: float | None
    batch: int | None = None
    committed_s: float | None = None
    proven_s: float | None = None
    executed_s: float | None = None
    safe_s: float | None = None
    finalized_s: float | None = None

    @property
    def hard_s(self) -> float | None:
        """Hard finality: executed on L1 (zks) or finalized tag (tags)."""
        return self.executed_s if self.executed_s is not None else self.finalized_s

    def chain(self) -> list[tuple[str, float | None]]:
        """The stages this record has, in the order they must happen."""
        out = [("submit", self.submit_s), ("soft", self.soft_s)]
        if self.safe_s is not None or self.finalized_s is not None:
            return out + [("safe", self.safe_s), ("finalized", self.finalized_s)]
        return out + [("committed", self.committed_s), ("proven", self.proven_s), ("executed", self.executed_s)]

    def order_violations(self, strict: bool = True) -> list[str]:
        """Every adjacent pair out of order (or missing), e.g. ``'soft 12.3 >= committed 12.1'``.

        ``safe``/``finalized`` (tags mode) are both instants at which this tracker's poll first saw the
        tag pass the block; when one poll sees both (the batch was committed and executed between two
        polls, or an OP-style chain finalized the block directly) they are equal: a tie at poll
        resolution, not disorder, so that pair is only a violation when finalized was seen *before* safe."""
        bad = []
        stages = self.chain()
        for (a, ta), (b, tb) in zip(stages, stages[1:], strict=False):
            pair_strict = strict and (a, b) != ("safe", "finalized")
            if ta is None or tb is None:
                bad.append(f"{a}={ta} or {b}={tb} missing")
            elif (ta >= tb) if pair_strict else (ta > tb):
                bad.append(f"{a} {ta:.3f} {'>=' if pair_strict else '>'} {b} {tb:.3f}")
        return bad

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hard_s"] = self.hard_s
        return d


def _not_served(e: RpcError) -> bool:
    """The error says the method does not exist here (JSON-RPC -32601, or a node's own wording of it)."""
    text = str(e).lower()
    return e.code == METHOD_NOT_FOUND or any(w in text for w in (
        "not found", "not supported", "unsupported", "not implemented", "does not exist", "unknown method"))


def _tx_fields(tx: Any) -> tuple[str, float | None, int | None]:
    """(hash, submit_s, block_number) from a TxObs-like object, a mapping, or a (hash, submit_s) pair."""
    if isinstance(tx, str):
        return tx, None, None
    if isinstance(tx, tuple):
        return tx[0], (tx[1] if len(tx) > 1 else None), (tx[2] if len(tx) > 2 else None)
    if isinstance(tx, Mapping):
        return tx["tx_hash"], tx.get("submit_s"), tx.get("block_number")
    return tx.tx_hash, getattr(tx, "submit_s", None), getattr(tx, "block_number", None)


class FinalityTracker:
    """Polls one L2 node for the finality of blocks / transactions. One instance per thread."""

    def __init__(self, l2_url: str, mode: Mode = "auto", poll_s: float = 0.25, rpc_timeout_s: float = 10.0,
                 unreachable_after_s: float = 10.0):
        """``poll_s``: seconds between polls (the resolution of observed times); ``unreachable_after_s``:
        how long the node may fail to answer before :class:`NodeUnreachable` is raised."""
        if mode not in ("zks", "tags", "auto"):
            raise ValueError(f"mode must be 'zks', 'tags' or 'auto', got {mode!r}")
        if poll_s <= 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        self.url = l2_url
        self.requested_mode = mode
        self.poll_s = poll_s
        self.unreachable_after_s = unreachable_after_s
        self.rpc = Rpc(l2_url, timeout_s=rpc_timeout_s)
        self._mode: str | None = None if mode == "auto" else mode
        self._checked = False
        #: why this target has no L1 settlement to track (None: it has, or not known yet)
        self._no_settlement: str | None = None
        #: the block tag polled for each tags-mode stage (ZKsync: l1_committed for "safe")
        self.tag_names: dict[str, str] = {"safe": "safe", "finalized": "finalized"}

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> FinalityTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection and mode ---------------------------------------------------------------------------------
    def _call(self, method: str, params: Sequence[Any] | None = None) -> Any:
        try:
            return self.rpc.call(method, params)
        except RpcTransportError as e:
            raise NodeUnreachable(f"L2 node at {self.url} is not reachable ({type(e).__name__}: {e})") from e

    def _batch(self, calls: list[tuple[str, list]]) -> list[dict[str, Any]]:
        try:
            return self.rpc.batch_raw(calls)
        except RpcTransportError as e:
            raise NodeUnreachable(f"L2 node at {self.url} is not reachable ({type(e).__name__}: {e})") from e

    @property
    def mode(self) -> str:
        """'zks' or 'tags' (detected on first use for mode='auto'); checks the node answers and supports it."""
        if not self._checked:
            self._detect()
        return self._mode  # type: ignore[return-value]

    @property
    def no_settlement(self) -> str | None:
        """Why the target has no L1 settlement to track (anvil-zksync's shape), or None."""
        if not self._checked:
            self._detect()
        return self._no_settlement

    @property
    def stages(self) -> tuple[str, ...]:
        return ZKS_STAGES if self.mode == "zks" else TAG_STAGES

    @property
    def hard_stage(self) -> str:
        return "executed" if self.mode == "zks" else "finalized"

    def _answers(self, method: str, params: list) -> tuple[bool, Any]:
        """(served, result) of one call; an RPC error reply counts as not served."""
        try:
            return True, self._call(method, params)
        except RpcError:
            return False, None

    def _detect(self) -> None:
        head = to_int(self._call("eth_blockNumber"))
        zks_ok, details = (False, None)
        if self._mode in (None, "zks"):
            try:
                details = self._call("zks_getBlockDetails", [head])
                zks_ok = True
            except RpcError as e:
                if self._mode == "zks":
                    raise FinalityError(
                        f"{self.url} does not serve zks_getBlockDetails ({e}); use mode='tags' or 'auto'"
                    ) from e
        zks_api, _ = (True, None) if zks_ok else self._answers("zks_L1BatchNumber", [])
        if zks_api:
            self.tag_names = {"safe": "l1_committed", "finalized": "finalized"}
        if zks_ok:
            self._mode = "zks"
            self._no_settlement = self._settlement_missing(details)
        else:
            try:
                self._call("eth_getBlockByNumber", ["finalized", False])
            except RpcError as e:
                raise FinalityError(
                    f"{self.url} supports neither zks_getBlockDetails nor the 'finalized' block tag ({e})"
                ) from e
            self._mode = "tags"
        self._checked = True

    def _settlement_missing(self, head_details: Any) -> str | None:
        """The reason a zks target has no L1 settlement data, or None. anvil-zksync answers
        zks_getBlockDetails with every commit/prove/execute field null and does not serve
        zks_getL1BatchDetails; a real ZKsync node (and the embedded one) serves it for its batches."""
        batch = to_int(head_details["l1BatchNumber"]) if isinstance(head_details, Mapping) and \
            head_details.get("l1BatchNumber") is not None else 0
        try:
            self._call("zks_getL1BatchDetails", [max(batch - 1, 0)])
            return None
        except RpcError as e:
            if not _not_served(e):
                raise FinalityError(f"zks_getL1BatchDetails on {self.url}: {e}") from e
        l1_fields = ("commitTxHash", "proveTxHash", "executeTxHash", "committedAt", "provenAt", "executedAt")
        all_null = isinstance(head_details, Mapping) and all(head_details.get(f) is None for f in l1_fields)
        return (f"{self.url} serves zks_getBlockDetails but not zks_getL1BatchDetails"
                f"{' and every commit/prove/execute field is null' if all_null else ''} (anvil-zksync's shape): "
                "no L1 settlement behind it, so no committed/proven/executed stage can be observed")

    # -- blocks ----------------------------------------------------------------------------------------------
    def poll_blocks_once(self, records: dict[int, BlockFinality]) -> None:
        """One poll: update ``records`` in place with whatever stages are reached now."""
        now_fn = time.time
        pending = [n for n, r in records.items() if not all(r.reached(s) for s in self.stages)]
        if not pending:
            return
        if self.mode == "zks":
            for i in range(0, len(pending), 200):
                chunk = pending[i : i + 200]
                replies = self._batch([("zks_getBlockDetails", [n]) for n in chunk])
                seen = now_fn()
                for n, rep in zip(chunk, replies, strict=False):
                    if "error" in rep:
                        raise FinalityError(f"zks_getBlockDetails({n}) on {self.url}: {rep['error']}")
                    d = rep.get("result")
                    if d is None:  # not (yet) known to the node
                        continue
                    rec = records[n]
                    if rec.batch is None and d.get("l1BatchNumber") is not None:
                        rec.batch = to_int(d["l1BatchNumber"])
                    for stage in ZKS_STAGES:
                        if rec.reached(stage):
                            continue
                        iso_t = parse_time(d.get(f"{stage}At"))
                        unix_t = parse_time(d.get(f"{stage}AtUnix"))
                        if iso_t is None and unix_t is None:
                            continue
                        rec.observed[stage] = seen
                        rec.reported[stage] = unix_t if unix_t is not None else iso_t  # type: ignore[assignment]
                        rec.times[stage] = rec.reported[stage]
        else:
            replies = self._batch([("eth_getBlockByNumber", [self.tag_names[t], False]) for t in TAG_STAGES])
            seen = now_fn()
            heads = {}
            for tag, rep in zip(TAG_STAGES, replies, strict=False):
                if "error" in rep:
                    raise FinalityError(
                        f"eth_getBlockByNumber({self.tag_names[tag]!r}) on {self.url}: {rep['error']}")
                b = rep.get("result")
                heads[tag] = to_int(b["number"]) if b else -1
            for n in pending:
                rec = records[n]
                for tag in TAG_STAGES:
                    if not rec.reached(tag) and heads[tag] >= n:
                        rec.observed[tag] = seen
                        rec.times[tag] = seen

    def wait_blocks(self, blocks: Iterable[int], timeout_s: float = 600.0,
                    until: str | None = None) -> dict[int, BlockFinality]:
        """Poll until every block reached ``until`` (default: the last stage of the mode) or raise
        :class:`FinalityTimeout` after ``timeout_s`` seconds with the partial records."""
        nums = sorted({int(b) for b in blocks})
        if any(n < 0 for n in nums):
            raise ValueError(f"block numbers must be >= 0, got {nums[:5]}")
        target = until or self.hard_stage
        if target not in self.stages:
            raise ValueError(f"stage {target!r} is not one of mode {self.mode!r}'s stages {self.stages}")
        upto = self.stages[: self.stages.index(target) + 1]
        if self.mode == "zks" and self.no_settlement:
            raise NoSettlementData(self.no_settlement)
        records = {n: BlockFinality(n, self.mode) for n in nums}
        deadline = time.monotonic() + timeout_s
        last_ok = time.monotonic()
        while True:
            try:
                self.poll_blocks_once(records)
                last_ok = time.monotonic()
            except NodeUnreachable:
                if time.monotonic() - last_ok > self.unreachable_after_s:
                    raise
            if all(all(r.reached(s) for s in upto) for r in records.values()):
                return records
            if time.monotonic() > deadline:
                missing = {n: [s for s in upto if not r.reached(s)] for n, r in records.items()
                           if not all(r.reached(s) for s in upto)}
                shown = dict(list(missing.items())[:10])
                raise FinalityTimeout(
                    f"{len(missing)} of {len(records)} blocks on {self.url} did not reach {target!r} within "
                    f"{timeout_s:.0f} s (mode {self.mode}); first ones: {shown}", records)
            time.sleep(self.poll_s)

    # -- transactions ----------------------------------------------------------------------------------------
    def inclusion(self, tx_hashes: Sequence[str], timeout_s: float = 120.0) -> dict[str, tuple[int, float]]:
        """tx hash -> (block number, local time its receipt was first observed), polling receipts."""
        out: dict[str, tuple[int, float]] = {}
        todo = list(dict.fromkeys(tx_hashes))
        deadline = time.monotonic() + timeout_s
        while todo:
            still = []
            for i in range(0, len(todo), 500):
                chunk = todo[i : i + 500]
                replies = self._batch([("eth_getTransactionReceipt", [h]) for h in chunk])
                seen = time.time()
                for h, rep in zip(chunk, replies, strict=False):
                    rc = rep.get("result")
                    if rc is None or rc.get("blockNumber") is None:
                        still.append(h)
                    else:
                        out[h] = (to_int(rc["blockNumber"]), seen)
            todo = still
            if todo:
                if time.monotonic() > deadline:
                    raise FinalityTimeout(
                        f"{len(todo)} txs have no receipt on {self.url} after {timeout_s:.0f} s: {todo[:5]}", out)
                time.sleep(self.poll_s)
        return out

    def track_txs(self, txs: Iterable[Any], soft: Mapping[str, float] | None = None, timeout_s: float = 600.0,
                  until: str | None = None) -> list[TxFinality]:
        """Finality of every tx: ``txs`` are TxObs-like objects, mappings with ``tx_hash``/``submit_s``
        (/``block_number``), ``(hash, submit_s)`` pairs or bare hashes. ``soft``: tx hash -> soft-finality
        time from a block observer; txs missing there get the time this tracker first saw their receipt.
        Blocks the txs are in are then polled until ``until`` (default: hard finality), bounded by
        ``timeout_s`` seconds in all."""
        t_end = time.monotonic() + timeout_s
        rows = [_tx_fields(t) for t in txs]
        soft = dict(soft or {})
        need = [h for h, _s, b in rows if b is None or h not in soft]
        found = self.inclusion(need, timeout_s=max(1.0, t_end - time.monotonic())) if need else {}
        blocks = {}
        for h, _s, b in rows:
            blocks[h] = b if b is not None else found[h][0]
        recs = self.wait_blocks(set(blocks.values()), timeout_s=max(1.0, t_end - time.monotonic()), until=until)
        out = []
        for h, submit, _b in rows:
            br = recs[blocks[h]]
            soft_t = soft.get(h, found.get(h, (None, None))[1])
            out.append(TxFinality(
                tx_hash=h, block_number=blocks[h], submit_s=submit, soft_s=soft_t, batch=br.batch,
                committed_s=br.times.get("committed"), proven_s=br.times.get("proven"),
                executed_s=br.times.get("executed"), safe_s=br.times.get("safe"),
                finalized_s=br.times.get("finalized")))
        return out
