"""Swap / transfer load generator: N generator instances as separate processes.

Each instance (a ``multiprocessing`` *spawn* process, standing in for the
paper's separate machines) owns its accounts (disjoint BIP-44 ranges of one
mnemonic), reads their nonces once, then pre-signs every transaction
*before* the measured window opens. All instances wait for one common start
time, then send:

* ``send_mode='batch'``: JSON-RPC batches of ``batch_size`` raw txs per HTTP request;
* ``send_mode='single'``: one HTTP request per tx (keep-alive session).

``loop='closed'``: as fast as the node answers. ``loop='open'``: at a target
rate (txs/s over all instances, split evenly), each tx released at its
scheduled time (a late tx is sent at once and its lag recorded).

Clock: submit times are ``time.time()`` taken just before the HTTP request
carrying the tx is sent (processes differ, so a monotonic clock is not
shared; one machine's wall clock is). Inclusion times come from the
:class:`~harness.chain.observe.BlockObserver` on the same clock.

Accounting: a tx whose request failed in transit (connection error, timeout)
is not assumed rejected: the node is asked for it by hash
(``eth_getTransactionByHash``) and, after the drain, for its receipt. Every
receipt is checked (status 0/1, ``0 < gasUsed <= the tx's gas limit``).
The drain waits ``drain_timeout_s``; by default that is derived from the
workload's gas and the chain's gas per second (:func:`drain_timeout_for`).
Every result carries the chain profile (or ``external`` with the observed
block gas limit and block time); on a profiled chain every observed block
must carry the profile's gas limit.

Swaps (``swapExactTokensForTokens``, 1 token in, no slippage limit, recipient
= sender) alternate direction A→B, B→A per account by default so the pool
stays balanced (``alternate=False``: always A→B, the price drifts; gas is
the same). Every swap carries an explicit gas limit = the larger
``eth_estimateGas`` of the two directions for the first swap of a block (the
minimal limit that always succeeds: ≈103 k for ≈87.3 k used), because anvil
admits a tx only while its gas *limit* fits in the block's remaining gas (see
:mod:`harness.chain.profiles`). Transfers: 1 wei, 21 000 gas, to the next account.

The package, by concern:

* :mod:`~harness.chain.loadgen.config`: :class:`LoadConfig`, the drain timeout, the chain's rates, errors;
* :mod:`~harness.chain.loadgen.instance`: one generator process (its job, pre-signing, the send loop,
  the spawn entry point) and :func:`presign`;
* :mod:`~harness.chain.loadgen.run`: the controller (:class:`LoadRun`, :func:`run_load`);
* :mod:`~harness.chain.loadgen.summary`: :class:`LoadResult` and its ``chain`` record, per-request
  reply times, send rates, progress lines;
* :mod:`~harness.chain.loadgen.ceiling`: anvil's own intake ceiling (:func:`measure_ingestion_ceiling`).
"""

from harness.chain.loadgen.ceiling import measure_ingestion_ceiling
from harness.chain.loadgen.config import (
    DRAIN_MARGIN,
    DRAIN_SLACK_S,
    FALLBACK_DRAIN_TIMEOUT_S,
    LATE_S,
    LoadConfig,
    ProfileMismatchError,
    Workload,
    chain_rates,
    drain_timeout_for,
)
from harness.chain.loadgen.instance import InstanceJob, InstanceResult, presign, run_instance
from harness.chain.loadgen.run import LoadRun, run_load
from harness.chain.loadgen.summary import LoadResult, request_latency, stderr_progress

__all__ = [
    "DRAIN_MARGIN",
    "DRAIN_SLACK_S",
    "FALLBACK_DRAIN_TIMEOUT_S",
    "LATE_S",
    "InstanceJob",
    "InstanceResult",
    "LoadConfig",
    "LoadResult",
    "LoadRun",
    "ProfileMismatchError",
    "Workload",
    "chain_rates",
    "drain_timeout_for",
    "measure_ingestion_ceiling",
    "presign",
    "request_latency",
    "run_instance",
    "run_load",
    "stderr_progress",
]
