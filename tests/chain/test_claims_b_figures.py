"""The paper-B figures (harness/chain/plots.py) render from the shapes the suites hand them (synthetic rows, no chain)."""

import io

import pytest

from harness.chain import plots

STEPS = [{"instances": k, "tps_sustained": 18.0 * k, "lost": 0, "stable": True} for k in (1, 2, 3, 4, 5, 8)]
BATCHES = [{"number": n, "l2TxCount": 150 + n, "l2_block_range": [3 * n, 3 * n + 2],
            "timings_s": {"seal": 1e-4, "state_diff": 0.2, "tree": 1.1, "compress": 0.03, "persist": 0.7,
                          "commit": 0.6, "prove": 0.9}} for n in range(1, 5)]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.stability_figure(STEPS),
        lambda: plots.stability_figure([*STEPS, {"instances": 16, "tps_sustained": 0, "lost": 7, "stable": False}]),
        lambda: plots.stage_timings_figure(BATCHES),
        lambda: plots.workload_ratio_figure({"tps_sustained": 28.0, "gps_sustained": 2.45e6},
                                               {"tps_sustained": 119.0, "gps_sustained": 2.5e6}),
        lambda: plots.batch_composition_figure([{"run_tx_count": n} for n in (10, 80, 90, 30)], BATCHES, 9.0, 31.0),
    ],
)
def test_figure_renders(make):
    assert _png(make()).startswith(b"\x89PNG")
