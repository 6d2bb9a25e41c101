#!/usr/bin/env python3
"""Compare two runs' claim records: exit 1 when a verdict flips, a value moves beyond its claim's drift,
or a claim of BASE is missing from NEW; exit 2 when the runs cannot be compared (profile or target differ,
no records). The rules are in harness/compare.py; each claim's drift is stated in its suite's spec.py.

    ./run compare BASE [NEW]          # NEW defaults to reports/results
    python scripts/compare_runs.py BASE [NEW] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.compare import EXIT_MISMATCH, RunMismatch, compare_runs, format_table, load_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./run compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="the reference run: a results directory (with claims/*.json)")
    ap.add_argument("new", nargs="?", default="reports/results", help="the run to check (default reports/results)")
    ap.add_argument("--json", metavar="OUT", help="also write the comparison as JSON to OUT")
    args = ap.parse_args(argv)
    try:
        cmp = compare_runs(load_run(args.base), load_run(args.new))
    except RunMismatch as exc:
        print(f"compare: cannot compare: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    print(format_table(cmp))
    if args.json:
        out = [
            {"claim_id": c.claim_id, "test": c.test, "status": c.status, "base_verdict": c.base_verdict,
             "new_verdict": c.new_verdict, "compared": c.compared, "ignored": c.ignored,
             "changes": [vars(ch) for ch in c.changes]}
            for c in cmp.claims
        ]
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return cmp.exit_status


if __name__ == "__main__":
    sys.exit(main())
