"""The load generator's send rate against anvil's own intake ceiling, measured in the same run.

Ceiling (:func:`~harness.chain.loadgen.measure_ingestion_ceiling`): with mining off, 4 separate
processes, each with one warm keep-alive HTTP connection and owning whole accounts, POST JSON-RPC
batch bodies (500 ``eth_sendRawTransaction`` each) that were serialized before the clock starts;
replies are parsed after it stops. The client then costs a socket write per batch, so the window
measures anvil's pool intake, not Python. (``curl --parallel`` on pre-written batch files would be as
cheap per byte, but it is one more binary, and timing it means timing a process start and its file
reads; processes with raw connections keep every sender on one wall clock with a common start.)
Then one ``evm_mine``: anvil's execution rate.

Generator: ``run_load``'s three phases on the l2-like profile (1 s blocks, 1 G gas: the chain is not
the limit); spawning and pre-signing (prepare) and the drain/receipts (finish) are *not* timed:
``benchmark.pedantic`` times only the send phase (start signal -> every instance has sent
everything). ``extra_info`` carries the instances' own send window and rate, anvil's intake and
execution rates (txs/s and gas/s), and the ratio generator / intake. Run with ``-p no:xdist``
(``./run bench``).
"""

from __future__ import annotations

import pytest

from harness.chain.loadgen import LoadConfig, LoadRun, measure_ingestion_ceiling, presign
from harness.chain.profiles import get_profile

pytestmark = pytest.mark.chain


@pytest.mark.parametrize("send_mode", ["batch", "single"])
def test_generator_send_rate_vs_anvil_ingestion(benchmark, l1_chain_for, profile, send_mode) -> None:
    chain = l1_chain_for("l2-like")
    per_account = 40 if profile == "paper" else 20  # 2,000 swaps per side at smoke: a ~0.4 s intake window
    ceiling_cfg = LoadConfig(
        "swap",
        instances=1,
        accounts_per_instance=100,
        txs_per_account=per_account,
        account_base=chain.account_base,
    )
    raws, _ = presign(chain.url, ceiling_cfg, chain.mnemonic, chain.uniswap)
    ceiling = measure_ingestion_ceiling(
        chain.url,
        raws,
        int(get_profile("l2-like").block_time_s),
        senders=4,
        accounts=ceiling_cfg.accounts_per_instance,
        profile=chain.profile,
    )
    gen_cfg = LoadConfig(
        "swap",
        instances=2,
        accounts_per_instance=50,
        txs_per_account=per_account,
        send_mode=send_mode,
        account_base=chain.account_base,
        start_delay_s=0.05,
    )
    run = LoadRun(chain.url, gen_cfg, chain.mnemonic, chain.uniswap, chain_info={"profile": chain.profile})
    try:
        run.prepare()  # spawn + pre-sign: not timed
        benchmark.pedantic(run.send, rounds=1, iterations=1)  # timed: the send phase only
        result = run.finish()  # drain + receipts: not timed
    finally:
        run.close()
    m = result.metrics
    benchmark.extra_info.update(
        {
            "claim": "B3",  # generator capacity bounds what Table 1 (TPS vs instances) can show
            "chain_profile": result.chain["profile"],
            "send_mode": send_mode,
            "txs": ceiling["n"],
            "anvil_ingest_tps": ceiling["ingest_tps"],
            "anvil_ingest_senders": ceiling["senders"],
            "anvil_ingest_sender_kind": ceiling["sender_kind"],
            "anvil_execute_tps": ceiling["execute_tps"],
            "anvil_execute_gps": ceiling["execute_gps"],
            "generator_instances": gen_cfg.instances,
            "generator_send_window_s": m["send_window_s"],
            "generator_send_phase_s": m["send_phase_s"],
            "generator_send_tps": m["send_rate_tps"],
            "generator_tps_sustained": m["tps_sustained"],
            "generator_gps_sustained": m["gps_sustained"],
            "generator_over_ingest": m["send_rate_tps"] / ceiling["ingest_tps"],
            "missing": m["accounting"]["missing"],
            "timed": "benchmark time = controller's send phase (start signal incl. start_delay_s=0.05 s, "
            "until every instance reported); generator_send_tps = txs / the instances' own send window",
        }
    )
    assert m["accounting"]["missing"] == 0 and m["accounting"]["failed"] == 0
    assert m["send_rate_tps"] > 0
