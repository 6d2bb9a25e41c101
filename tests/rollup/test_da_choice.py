"""``--da auto`` (the node's default): blobs where the L1 supports EIP-4844, calldata where it does not;
checked against real anvils (the default hardfork, and a pre-Cancun one)."""

from __future__ import annotations

import pytest

from harness.chain.anvil import Anvil
from harness.rollup.da_choice import choose_data_availability

pytestmark = [pytest.mark.chain]


@pytest.mark.parametrize(("hardfork", "expect"), [(None, "blobs"), ("shanghai", "calldata")])
def test_auto_picks_blobs_only_where_the_l1_supports_them(tmp_path, hardfork, expect) -> None:
    with Anvil(hardfork=hardfork, log_dir=tmp_path) as l1:
        da, why = choose_data_availability("auto", l1.url)
        assert da == expect, why
        assert why.startswith("--da auto: ")
        assert choose_data_availability("calldata", l1.url) == ("calldata", "--da calldata given")


def test_auto_keeps_calldata_when_batches_may_outgrow_blobs(tmp_path) -> None:
    with Anvil(log_dir=tmp_path) as l1:
        da, why = choose_data_availability("auto", l1.url, max_bytes=10_000_000)
        assert da == "calldata" and "--max-bytes 10000000" in why
        assert choose_data_availability("auto", l1.url, max_bytes=120_000)[0] == "blobs"
