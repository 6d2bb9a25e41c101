"""Measure swap load on every L1 chain profile, in each send mode and loop, and print one table.

    .venv/bin/python scripts/measure_l1_profiles.py                 # all profiles x batch/single x closed/open
    .venv/bin/python scripts/measure_l1_profiles.py --tiny          # a quick check that it works
    .venv/bin/python scripts/measure_l1_profiles.py --dry-run       # only print the CLI commands

Every cell is one ``python -m harness.chain`` run (its own anvil for the profile, Uniswap V2 from
the npm artifacts, 2 generator instances x 20 accounts, swaps). Workload per profile: ``--blocks``
full blocks' worth of swaps plus a tail (anvil fits ~343 swaps in a 30 M gas block, ~28 in 2.5 M),
so the steady window (first and last run block dropped) spans ``--blocks - 1`` block intervals; the
execution-bound l2-like profile gets ``--l2-swaps`` swaps instead. Open loop: the target rate is
``--open-factor`` x the profile's gas-used ceiling (gas per second / 87.4 k gas per swap), and
``--l2-open-tps`` on l2-like. Each run's full JSON record goes to ``--out-dir``; the table (markdown)
and a JSON summary are printed at the end. Runs one at a time: run it on a quiet machine (mainnet
profiles take about a minute per cell; all 20 cells about 15 minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.chain.profiles import PROFILES, get_profile  # noqa: E402

GAS_PER_SWAP = 87_400  # steady-state swapExactTokensForTokens gas used (CLAIMS.md: ~87.3 k)
INSTANCES, ACCOUNTS = 2, 20
ALL_PROFILES = ["mainnet", "mainnet-36m", "mainnet-60m", "mainnet-scaled", "l2-like"]


def workload(profile_name: str, blocks: int, l2_swaps: int) -> int:
    """Swaps for ``blocks`` full blocks plus a tail (l2-like: ``l2_swaps``)."""
    if profile_name == "l2-like":
        return l2_swaps
    per_block = get_profile(profile_name).gas_limit // GAS_PER_SWAP
    return blocks * per_block + max(5, per_block // 10)


def open_target(profile_name: str, factor: float, l2_open_tps: float) -> float:
    if profile_name == "l2-like":
        return l2_open_tps
    return factor * get_profile(profile_name).gas_per_second / GAS_PER_SWAP


def command(
    profile_name: str, mode: str, loop: str, n_swaps: int, target: float | None, out: Path
) -> list[str]:
    per_account = math.ceil(n_swaps / (INSTANCES * ACCOUNTS))
    cmd = [
        sys.executable, "-m", "harness.chain",
        "--chain-profile", profile_name,
        "--workload", "swap",
        "--instances", str(INSTANCES),
        "--accounts", str(ACCOUNTS),
        "--txs-per-account", str(per_account),
        "--send-mode", mode,
        "--loop", loop,
        "--quiet",
        "--out", str(out),
    ]  # fmt: skip
    if loop == "open":
        cmd += ["--target-tps", f"{target:.3f}"]
    return cmd


def row(
    profile_name: str, mode: str, loop: str, target: float | None, rc: int, rec: dict | None, wall_s: float
):
    out = {
        "profile": profile_name,
        "send_mode": mode,
        "loop": loop,
        "exit_code": rc,
        "wall_s": round(wall_s, 1),
    }
    if loop == "open":
        out["target_tps"] = target
    if rec is None:
        return out
    m = rec["metrics"]
    a = m["accounting"]
    prof = rec["chain"]["profile"]
    gps_ceiling = prof.get("gas_limit", 0) / prof.get("block_time_s", 1) if prof.get("gas_limit") else None
    out.update(
        {
            "txs": a["sent"],
            "included": a["included"],
            "missing": a["missing"],
            "failed": a["failed"],
            "rejected": a["rejected"],
            "tps_sustained": m["tps_sustained"],
            "tps_peak": m["tps_peak"],
            "tps_paper_formula": m["tps_paper_formula"],
            "gps_sustained": m["gps_sustained"],
            "ceiling_tps_gas_used": (gps_ceiling / m["gas_per_tx_mean"])
            if gps_ceiling and m["gas_per_tx_mean"]
            else None,
            "latency_p50_s": m["latency_p50_s"],
            "latency_p99_s": m["latency_p99_s"],
            "send_rate_tps": m["send_rate_tps"],
            "open_loop_max_lag_s": m.get("open_loop_max_lag_s"),
            "run_blocks": m["run_blocks"],
            "anvil": (rec["chain"].get("anvil") or {}).get("version"),
        }
    )
    return out


def fmt(x, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def table(rows: list[dict]) -> str:
    head = (
        "| profile | send | loop | target TPS | txs | sustained TPS | peak TPS | paper TPS | gas-used ceiling TPS "
        "| GPS (Mgas/s) | p50 (s) | p99 (s) | send rate (tx/s) | missing | exit |"
    )
    lines = [head, "|" + "|".join(["---"] * 15) + "|"]
    for r in rows:
        gps = r.get("gps_sustained")
        lines.append(
            "| "
            + " | ".join(
                [
                    r["profile"],
                    r["send_mode"],
                    r["loop"],
                    fmt(r.get("target_tps")),
                    fmt(r.get("txs")),
                    fmt(r.get("tps_sustained")),
                    fmt(r.get("tps_peak")),
                    fmt(r.get("tps_paper_formula")),
                    fmt(r.get("ceiling_tps_gas_used")),
                    fmt(gps / 1e6 if gps else None, 2),
                    fmt(r.get("latency_p50_s"), 2),
                    fmt(r.get("latency_p99_s"), 2),
                    fmt(r.get("send_rate_tps"), 0),
                    fmt(r.get("missing")),
                    fmt(r.get("exit_code")),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiles", nargs="+", choices=sorted(PROFILES), default=ALL_PROFILES)
    p.add_argument("--modes", nargs="+", choices=["batch", "single"], default=["batch", "single"])
    p.add_argument("--loops", nargs="+", choices=["closed", "open"], default=["closed", "open"])
    p.add_argument("--blocks", type=int, default=3, help="full blocks' worth of swaps per run (default 3)")
    p.add_argument("--l2-swaps", type=int, default=2000, help="swaps per run on l2-like (default 2000)")
    p.add_argument(
        "--open-factor", type=float, default=1.0, help="open-loop target / gas-used ceiling (default 1.0)"
    )
    p.add_argument(
        "--l2-open-tps", type=float, default=300.0, help="open-loop target on l2-like, txs/s (default 300)"
    )
    p.add_argument("--out-dir", type=Path, default=REPO / "reports/results/chain/profiles")
    p.add_argument(
        "--tiny", action="store_true", help="mainnet-scaled + l2-like, 2 blocks / 200 swaps: a smoke check"
    )
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per run before it is killed (default 900)"
    )
    args = p.parse_args(argv)
    if args.tiny:
        args.profiles, args.blocks, args.l2_swaps, args.l2_open_tps = (
            ["mainnet-scaled", "l2-like"],
            2,
            200,
            100.0,
        )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for prof in args.profiles:
        n = workload(prof, args.blocks, args.l2_swaps)
        for mode in args.modes:
            for loop in args.loops:
                target = open_target(prof, args.open_factor, args.l2_open_tps) if loop == "open" else None
                out = args.out_dir / f"{prof}-{mode}-{loop}.json"
                cmd = command(prof, mode, loop, n, target, out)
                if args.dry_run:
                    print(" ".join(["python", *cmd[1:]]))
                    continue
                print(f"[measure] {prof} {mode} {loop}: {n} swaps ...", file=sys.stderr, flush=True)
                out.unlink(missing_ok=True)
                t0 = time.monotonic()
                try:
                    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.timeout)
                    rc, err = proc.returncode, proc.stderr
                except subprocess.TimeoutExpired as e:
                    rc, err = 124, str(e)
                wall = time.monotonic() - t0
                rec = json.loads(out.read_text()) if out.is_file() else None
                if rc != 0:
                    print(
                        f"[measure]   exit {rc}: {err.strip().splitlines()[-1:] if err else ''}",
                        file=sys.stderr,
                    )
                rows.append(row(prof, mode, loop, target, rc, rec, wall))
    if args.dry_run:
        return 0
    print(table(rows))
    summary = args.out_dir / "summary.json"
    summary.write_text(json.dumps(rows, indent=1, default=str))
    print(f"\n(records: {args.out_dir}; summary: {summary})")
    return 0 if all(r["exit_code"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
