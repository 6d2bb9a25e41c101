"""The paper-B figures render from the shapes the suites hand them (synthetic rows, no chain)."""

import io

import pytest

from harness.chain import claims_b

STEPS = [{"instances": k, "tps_sustained": 18.0 * k, "lost": 0, "stable": True} for k in (1, 2, 3, 4, 5, 8)]
BATCHES = [{"number": n, "l2TxCount": 150 + n, "firstBlock": 3 * n, "lastBlock": 3 * n + 2,
            "timings_s": {"seal": 1e-4, "state_diff": 0.2, "tree": 1.1, "compress": 0.03, "persist": 0.7,
                          "commit": 0.6, "prove": 0.9}} for n in range(1, 5)]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


@pytest.mark.parametrize(
    "make",
    [
        lambda: claims_b.stability_figure(STEPS),
        lambda: claims_b.stability_figure([*STEPS, {"instances": 16, "tps_sustained": 0, "lost": 7, "stable": False}]),
        lambda: claims_b.stage_timings_figure(BATCHES),
        lambda: claims_b.workload_ratio_figure({"tps_sustained": 28.0, "gps_sustained": 2.45e6},
                                               {"tps_sustained": 119.0, "gps_sustained": 2.5e6}),
        lambda: claims_b.batch_composition_figure([{"run_tx_count": n} for n in (10, 80, 90, 30)], BATCHES),
    ],
)
def test_figure_renders(make):
    assert _png(make()).startswith(b"\x89PNG")
