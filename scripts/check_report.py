#!/usr/bin/env python3
"""Check a rendered Allure report: does every claim's page carry what a reviewer needs?

Reads ``reports/html/data/test-results/*.json`` (Allure 3 "awesome" output) and,
for every test labelled with a claim id (the ``claim`` label set by the
``claim`` marker; tests that only support a claim carry its ``feature`` label, not this one), lists its status and whether it carries

- ``pvm``: the "<id> paper vs measured" table (the paper's number beside ours),
- ``csv``: a data table (per-model / per-run rows),
- ``png``: a figure redrawn from our data,
- ``page``: the page itself (HTML description, shown without a click) carries the
  paper-vs-measured table with the verdict,
- ``fig``: the page shows a figure inline (a ``data:image/png`` image in the description);
  and no test attaches two things under one name (one attachment per table).

A claim id passes the check when every one of its tests has the paper-vs-measured
table, attached and on its page, and at least one of its tests has both a CSV and a PNG
attached and a figure inline. Exit status 1 when
a claim fails the check (or the report has no claim tests), 0 otherwise.

    python scripts/check_report.py [reports/html]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def _attachments(steps: list[dict]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for step in steps:
        if step.get("type") == "attachment":
            link = step.get("link") or {}
            out.append((link.get("name") or step.get("name") or "", link.get("contentType") or ""))
        out.extend(_attachments(step.get("steps") or []))
    return out


def claim_tests(report_dir: Path) -> list[dict]:
    """One row per claim test: claim id, test name, status, and which attachments it carries."""
    rows = []
    for path in sorted((report_dir / "data" / "test-results").glob("*.json")):
        data = json.loads(path.read_text())
        claim = next((lab["value"] for lab in data.get("labels", []) if lab.get("name") == "claim"), None)
        if claim is None:
            continue
        atts = _attachments(data.get("steps") or [])
        types = {t for _, t in atts}
        page = data.get("descriptionHtml") or ""
        rows.append(
            {
                "claim": claim,
                "test": data.get("name", path.stem),
                "status": data.get("status", "?"),
                "pvm": any("paper vs measured" in name for name, _ in atts),
                "csv": "text/csv" in types,
                "png": "image/png" in types,
                "page": "Paper vs measured" in page and "verdict" in page,
                "fig": 'src="data:image/png;base64,' in page,
                "known_deviation": "known deviation" in str((data.get("error") or {}).get("message", "")),
                "duplicates": sorted({n for n, _ in atts if [m for m, _ in atts].count(n) > 1}),
            }
        )
    return rows


def check(rows: list[dict]) -> dict[str, list[str]]:
    """Problems per claim id (empty lists: the claim's pages are complete)."""
    by_claim: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_claim[row["claim"]].append(row)
    problems: dict[str, list[str]] = {}
    for claim, tests in by_claim.items():
        issues = [f"{t['test']}: no paper-vs-measured table" for t in tests if not t["pvm"]]
        issues += [f"{t['test']}: its page (HTML description) shows no paper-vs-measured table and verdict"
                   for t in tests if not t["page"]]
        issues += [f"{t['test']}: attached more than once under one name: {', '.join(t['duplicates'])}"
                   for t in tests if t.get("duplicates")]
        if not any(t["csv"] and t["png"] for t in tests):
            issues.append("no test of this claim carries both a CSV table and a PNG figure")
        if not any(t["fig"] for t in tests):
            issues.append("no page of this claim shows its figure inline")
        problems[claim] = issues
    return problems


def _sort_key(claim: str) -> tuple[str, int]:
    digits = "".join(c for c in claim if c.isdigit())
    return (claim.rstrip("0123456789"), int(digits or 0))


def main(argv: list[str]) -> int:
    report_dir = Path(argv[1] if len(argv) > 1 else "reports/html")
    if not (report_dir / "data" / "test-results").is_dir():
        print(f"check_report: no rendered report under {report_dir} (run ./run report)", file=sys.stderr)
        return 1
    rows = claim_tests(report_dir)
    if not rows:
        print(f"check_report: {report_dir} has no claim tests", file=sys.stderr)
        return 1
    problems = check(rows)
    print(f"{'claim':<6} {'status':<8} pvm csv png page fig  test")
    for row in sorted(rows, key=lambda r: (_sort_key(r["claim"]), r["test"])):
        marks = " ".join((" x " if row[k] else " - ").ljust(len(k)) for k in ("pvm", "csv", "png", "page", "fig"))
        print(f"{row['claim']:<6} {row['status']:<8} {marks}  {row['test']}")
    bad = {c: p for c, p in problems.items() if p}
    for claim in sorted(bad, key=_sort_key):
        for p in bad[claim]:
            print(f"check_report: {claim}: {p}", file=sys.stderr)
    print(f"check_report: {len(problems) - len(bad)}/{len(problems)} claim ids have complete report pages")
    by_status: dict[str, int] = defaultdict(int)
    for row in rows:
        by_status[row["status"]] += 1
    devs = sorted({r["claim"] for r in rows if r["known_deviation"]}, key=_sort_key)
    print("check_report: claim tests by status: " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
          + f"; known deviations (registered strict xfails): {sum(r['known_deviation'] for r in rows)}"
          + (f" ({', '.join(devs)})" if devs else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
