"""Which data availability the node uses when none is asked for (``--da auto``, the default).

At the batch sizes this node seals under load (hundreds of txs, tens of kB compressed) EIP-4844 blobs are
what a rollup posts: ZKsync and the OP Stack moved their batch data to blobs with Dencun, and a blob's
131,072 blob gas carries up to 126,976 payload bytes where calldata costs 16 gas a byte. So blobs are the
default wherever the L1 supports them; calldata where it does not (a pre-Cancun L1: its block headers lack
Cancun's ``excessBlobGas`` (EIP-4844) or ``parentBeaconBlockRoot`` (EIP-4788), or it does not answer
``eth_blobBaseFee``), and the choice and its reason are reported. Both header fields are required because
anvil 1.7.1 reports ``excessBlobGas`` (0) in every block even under ``--hardfork shanghai`` or ``paris``.
"""

from __future__ import annotations

from harness.chain.rpc import Rpc, RpcError


def l1_supports_blobs(l1_url: str, timeout_s: float = 10.0) -> tuple[bool, str]:
    """(supported, why) for the L1 at ``l1_url``: its latest block header has Cancun's ``excessBlobGas`` and
    ``parentBeaconBlockRoot`` and it answers ``eth_blobBaseFee``."""
    rpc = Rpc(l1_url, timeout_s=timeout_s)
    head = rpc.call("eth_getBlockByNumber", ["latest", False]) or {}
    missing = [f for f in ("excessBlobGas", "parentBeaconBlockRoot") if head.get(f) is None]
    if missing:
        return False, f"the L1's latest block lacks {', '.join(missing)} (a pre-Cancun L1: no blobs)"
    try:
        fee = int(rpc.call("eth_blobBaseFee"), 16)
    except RpcError as e:
        return False, f"the L1 does not answer eth_blobBaseFee ({e})"
    return True, f"the L1 supports EIP-4844 blobs (a Cancun header, blob base fee {fee} wei)"


def choose_data_availability(requested: str, l1_url: str, max_bytes: int | None = None) -> tuple[str, str]:
    """The data availability to run with and why: ``requested`` as given unless it is ``auto``, which picks
    ``blobs`` where the L1 supports them and the sealing criteria fit them (``max_bytes`` at most half of
    what MAX_BLOBS blobs carry, as NodeConfig requires for blobs), ``calldata`` otherwise."""
    if requested != "auto":
        return requested, f"--da {requested} given"
    from harness.rollup.blobs import BLOB_PAYLOAD_BYTES, MAX_BLOBS

    limit = (MAX_BLOBS * BLOB_PAYLOAD_BYTES - 4) // 2
    if max_bytes is not None and max_bytes > limit:
        return "calldata", (f"--da auto: --max-bytes {max_bytes} is more than blobs can carry for a batch "
                            f"(<= {limit}: half of what {MAX_BLOBS} blobs hold)")
    ok, why = l1_supports_blobs(l1_url)
    return ("blobs" if ok else "calldata"), f"--da auto: {why}"
