"""Paper B's claims, pinned to the paper's version (see ../shared/CLAIMS.md).

Known deviations: add the measured value under the profile where the claim
did not reproduce (it becomes a strict xfail carrying that number).
"""

from harness.claims import Claim, Drift, Paper

PAPER = Paper(
    title="Scaling DeFi with ZK Rollups: Design, Deployment, and Evaluation of a Real-Time Proof-of-Concept",
    arxiv_id="2506.00500",
    version="v1",
    authors="IEEE ICDLT 2025",
    # ./run compare: rates and latencies under load move between runs with the machine's other load (sustained
    # rollup TPS 72.9, 65.0 and 45.4 in three smoke runs of 2026-12-01): +-50 %; a value that was 0 stays 0
    drift=Drift(rel=0.5, abs=0.0),
)

# -- the paper's numbers (passed into harness/chain's computations and figures; the harness never imports suites)
#: Table 1: generator instances -> TPS (200 txs per instance, txs / whole seconds)
PAPER_TABLE1_TPS: dict[int, float] = {1: 200.0, 2: 200.0, 3: 85.71, 4: 61.54, 5: 71.43}
PAPER_SOFT_MEDIAN_S = 2.5
PAPER_SOFT_MAX_S = 15.0
PAPER_PEAK_TPS = 98.4
PAPER_PEAK_AT_S = 4.0
PAPER_SUSTAINED_TPS = 71.43
PAPER_TXS_PER_BLOCK = 9.0
# B11's "L2 blocks are small", read as B5 reads "much later": within an order of magnitude of the paper
SMALL_BLOCK_FACTOR = 10.0
PAPER_TXS_PER_BATCH = 31.0
#: B6: the paper saw instability above this many generator instances
PAPER_MAX_STABLE_INSTANCES = 5

B1 = Claim("B1", PAPER, "Sec. evaluation",
           "Sustained swap TPS on the rollup exceeds L1 swap TPS.",
           "71.43 TPS sustained vs ~12-15 (elsewhere 15-23) on Ethereum L1",
           "L2/L1 sustained swap TPS ratio > 1 on the same swap workload, against each embedded L1 profile "
           "(mainnet: 30 M gas / 12 s, and mainnet-scaled: 2.5 M gas / 1 s; both 2.5 Mgas/s and gas-bound, so the "
           "L1 generator's send mode does not matter; the L2 side is the paper's generators: 5 instances, one "
           "HTTP request per tx), with 0 txs missing on the L2; and settlement-cost scaling factor > 1 (L1 gas "
           "per L1 swap / amortized commit + prove + execute L1 gas, blob gas included, per rollup tx)",
           # how inclusion was observed (newHeads / poll, resolution, gaps) is reported, not gated by ./run compare
           drift=Drift(rel=0.5, abs=0.0, ignore=("l2_observation", "l1_observation")))
B2 = Claim("B2", PAPER, "Fig 2",
           "TPS peaks early in a burst, above the sustained rate.",
           "peak 98.4 TPS around t = 4 s",
           "peak (best rate over >= 1 s between inclusion instants) > sustained, judged when an inclusion instant "
           "splits the run's steady window into two parts of >= 1 s; otherwise (a 1000-tx burst included in 2-4 "
           "one-second blocks) peak = sustained by construction or by a block seen a few ms under 1 s after the "
           "first, and the test is skipped as not measurable with its numbers in the reason")
B3 = Claim("B3", PAPER, "Table 1",
           "TPS against the number of concurrent generator instances.",
           "1->200, 2->200, 3->85.71, 4->61.54, 5->71.43 TPS (200 txs per instance; txs / whole seconds)",
           "the paper's shape, asserted on sustained TPS (sub-second local clocks, CLAIMS.md's measurement rule): "
           "TPS with 3, 4 and 5 instances all at least 10 % below TPS with 1 and 2 instances (max(TPS[3..5]) < "
           "0.9 x min(TPS[1..2]); the paper's drop is 57 %, and a smaller one is the order of near-equal numbers on "
           "a saturated node: 136, 142, 137, 150, 137 in one run); "
           "the same shape on the paper's txs / whole seconds is reported beside it, not judged (at 200 txs per "
           "instance and > 100 TPS a run spans 1-8 block seconds, so its 1 s resolution moves that formula by "
           "12-50 %); reported: per instance count 1..5, 8, 16 (and 32, 64 at the paper profile), txs, time, both "
           "TPS; loss accounting asserted "
           "apart (never a deviation)",
           known_deviations={
               "smoke": "no drop after 2 instances on the embedded node (2026-12-02, aiohttp transport, C "
                        "keccak, quiet machine): sustained TPS 1->(no sustained window: 200 txs in < 2 blocks), "
                        "2->148, 3->231, 4->233, 5->210, 8->277, 16->204 (paper formula 200, 400, 300, 400, 250, "
                        "267, 229); with training on the other core (fresh-clone CI) 71, 94, 98, 128, 136, 148, "
                        "171; 200 swaps per instance, one HTTP request per tx, send reply p50 4 ms at 1 instance "
                        "to 48 ms at 16; 0 lost",
               "paper": "no drop after 2 instances (2026-12-03, aiohttp node, steps to 64 instances; 50 accounts "
                        "x 4 swaps per instance, one HTTP request per tx; at 32 and 64 instances the generator "
                        "processes share the 2 cores with the node): sustained TPS 1->75.0, 2->88.5, 3->160.1, "
                        "4->119.3, 5->147.8, 8->95.2, 16->98.1, 32->110.1, 64->119.5 (paper formula 66.7, 133.3, "
                        "150, 133.3, 142.9, 100, 106.7, 110.3, 120.8); 0 lost at every step. 2026-12-01 on the "
                        "stdlib-HTTP node that stalled ~45 ms per request: 13.4 ... 92.3 at 16",
           })
B4 = Claim("B4", PAPER, "Sec. evaluation",
           "Soft finality (inclusion in an L2 block) is fast.",
           "all txs within 15 s; median = 2.5 s", "max soft-finality latency <= 15 s")
B5 = Claim("B5", PAPER, "Sec. evaluation",
           "Hard finality (batch committed, proven and verified on L1) comes much later than soft finality.",
           "10-20 min on their setup",
           "every tx of the 5-instance run: submit < soft < committed < proven < executed (strict); hard >> soft "
           "read as median(submit->executed) / median(submit->soft) >= 10 (an order of magnitude); the ratio is "
           "set by the node's batch-sealing criteria (shared node: max 3 blocks / 3 s / 500 txs per batch) and "
           "the 1 s L1 blocks, recorded beside it")
B6 = Claim("B6", PAPER, "Sec. discussion",
           "The sequencer is the weak point: past 5 concurrent generators it became unstable.",
           "failure above 5 instances",
           "asserted: instability above 5 instances (some step of 8 or 16 instances loses an accepted tx, has a "
           "rejected or reverted tx, or no new L2 block follows the run); reported: the largest stable count of "
           "steps 1..5, 8, 16 (32 and 64 at the paper profile) and the loss accounting per step (0 lost is asserted "
           "apart, never a deviation)",
           known_deviations={
               "smoke": "stable at every step 1, 2, 3, 4, 5, 8, 16 instances (0 lost, 0 rejected, 0 reverted, "
                        "blocks kept coming; 2026-12-02 at 71-277 TPS): largest stable = 16 = the largest tested",
               "paper": "stable at every step 1, 2, 3, 4, 5, 8, 16, 32, 64 instances of 50 accounts each (0 lost, "
                        "0 rejected, 0 reverted at every step, blocks kept coming; 2026-12-03, aiohttp node, "
                        "75-160 TPS sustained, flat from 8 to 64): largest stable = 64 = the largest tested",
           })
B7 = Claim("B7", PAPER, "Fig 4",
           "Block utilization fluctuates: low at the start and end of a run, peaks mid-run.",
           "Fig 4", "report per-block gas used / gas limit and txs per block over time")
B8 = Claim("B8", PAPER, "Sec. evaluation",
           "Merkle tree generation is the slowest batch-sealing stage.",
           "waiting_for_tree up to 2.44 s per batch, other stages < 250 ms",
           "the tree stage (as ZKsync's waiting_for_tree: Merkle hashing + changed-node delta + writing those "
           "nodes/leaves to the tree store; the rest of the seal transaction, batch record + block map + commit, is "
           "the separate 'persist' stage) has the largest median over the main run's batches among the sealing "
           "stages seal, state_diff, tree, compress, persist; all medians/maxima and tree hash/write parts reported")
B9 = Claim("B9", PAPER, "narrative",
           "Swaps are the realistic workload: TPS quoted for plain transfers overstates DeFi throughput.",
           "narrative",
           "transfer TPS > swap TPS on the same chain and profile: sustained TPS of generator runs on the "
           "gas-bound mainnet-scaled profile, and anvil's execution rate (one evm_mine over N pooled pre-signed "
           "txs) on the execution-bound l2-like profile; GPS reported beside TPS in both")
B10 = Claim("B10", PAPER, "narrative",
            "Gas per second (GPS) is a better capacity figure than TPS.",
            "narrative",
            "transfer vs swap run on the same gas-bound L1 (mainnet-scaled): |transfer GPS / swap GPS - 1| <= 0.1 "
            "while transfer TPS / swap TPS > 2; GPS reported beside TPS in every L1 record")
B11 = Claim("B11", PAPER, "Sec. evaluation",
            "L2 blocks are small and batches aggregate several of them.",
            "~9 txs per L2 block, ~31 per L1 batch",
            "both halves: L2 blocks are small (mean run txs per run block, the run's txs / its blocks, <= 10 x the "
            "paper's ~9, an order of magnitude as B5 reads 'much later') and every batch holding the 5-instance run spans > 1 L2 block "
            "(min blocks per batch > 1); txs per L2 block and per batch reported beside the node's sealing "
            "criteria (shared node: max 3 blocks / 3 s / 500 txs). Until 2026-12-04 only the second half was "
            "judged, and on a node whose 1 s blocks hold about a batch's 500-tx cap it flips with where block "
            "boundaries fall (CI: one-block batch; the next local run: 3 blocks per batch)",
            known_deviations={
                "smoke": "L2 blocks are not small on the embedded node (2026-12-04, KZG work in a child process): "
                         "333 run txs per run block (the 1000-tx burst in 3 one-second blocks; 500 in runs of 2 "
                         "blocks; 311-568 TPS sustained), paper ~9, limit 90; batches span 1-3 blocks, a 1 s "
                         "block holding about the 500-tx batch cap (min blocks per batch 1 in CI and in one local "
                         "run, 3 in another)",
                "paper": "L2 blocks are not small on the embedded node (2026-12-04, same 1000-tx burst as smoke: 50 "
                         "accounts x 4 swaps x 5 instances): 250 run txs per run block (4 one-second blocks, 317.5 "
                         "TPS sustained), paper ~9, limit 90; batches span 2-4 blocks",
            })

# B1's L1 half (suites/rollup/test_l1_throughput.py): the L1 baseline the rollup is compared with. Its own
# record because it asserts something else than B1's L2/L1 ratio (same claim id, like B10_ROLLUP).
B1_L1 = Claim("B1", PAPER, "Sec. evaluation",
              "L1 baseline for B1: sustained swap TPS on an L1 profile is its gas-per-second ceiling.",
              "~12-15 (elsewhere 15-23) TPS on Ethereum L1",
              "on each L1 profile: 0.9 <= sustained swap TPS / gas-used ceiling <= 1.02, where the gas-used "
              "ceiling = block gas limit / block time / mean gas used per swap (the verdict uses it: it is the "
              "chain's capacity whatever gas limit the client signs with); the gas-limit packing ceiling "
              "floor(block gas limit / swap gas limit) / block time and anvil's own packing rule are reported "
              "beside it, not judged; and 0 missing, 0 failed, 0 rejected swaps")

# B10 measured on the rollup (suites/rollup/test_b_rollup.py); B10 above is the L1 suite's (it reproduces on
# a gas-bound L1, so the rollup's deviation cannot live on the same record).
B10_ROLLUP = Claim("B10", PAPER, "narrative",
                   "Gas per second (GPS) is a better capacity figure than TPS (on the rollup).",
                   "narrative", "transfer vs swap run on the same L2: GPS within 10 % while TPS differs > 2x",
                   known_deviations={
                       "smoke": "the embedded rollup is not gas-bound: transfer/swap GPS ratio 0.27, TPS ratio 1.12 "
                                "(swap 209.8 TPS / 18.3 Mgas/s, transfer 234.8 TPS / 4.9 Mgas/s, 5 instances; "
                                "2026-12-02, quiet machine; 0.29 / 1.19 at 120 / 143 TPS on a loaded one)",
                       "paper": "the embedded rollup is not gas-bound (2026-12-01, stdlib-HTTP node, not "
                                "re-measured since): transfer/swap GPS ratio 0.23, TPS ratio 0.96 (swap 54.8 TPS / 4.80 Mgas/s, transfer 52.9 TPS / 1.11 Mgas/s, 5 instances of 50 "
                                "accounts; 2026-12-01)",
                   })

CLAIMS = {c.id: c for c in (B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11)}
