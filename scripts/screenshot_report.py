#!/usr/bin/env python3
"""Dev tool (not CI: needs a Chromium): screenshot report pages in headless Chromium.

Serves a rendered Allure report over http://127.0.0.1:<OS-assigned port> from a thread and shoots one
PNG per test whose name contains a given string, opening the test's page directly
(``index.html#/<test result id>``), so what the PNG shows is what a reviewer sees without a click.

    python scripts/screenshot_report.py reports/html reports/docs/claim-a2.png test_a2_width_sweep
    python scripts/screenshot_report.py reports/bench-html reports/docs/bench.png "mlp-w64" --height 2600

Install a browser first (Debian: ``apt-get install -y chromium``); ``--chromium`` or $CHROMIUM picks it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1"]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102
        pass


def find_test(report: Path, contains: str) -> tuple[str, str]:
    """(test result id, name) of the first test (by name) whose name contains ``contains``."""
    hits = []
    for p in (report / "data" / "test-results").glob("*.json"):
        d = json.loads(p.read_text())
        if contains in d.get("name", ""):
            hits.append((d.get("name", ""), d["id"]))
    if not hits:
        raise SystemExit(f"screenshot: no test in {report} whose name contains {contains!r}")
    name, tid = sorted(hits)[0]
    return tid, name


def shoot(chromium: str, url: str, out: Path, width: int, height: int, budget_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if not out.is_file():
        raise SystemExit(f"screenshot: chromium wrote no {out} (rc {proc.returncode})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path, help="a rendered report directory (reports/html, reports/bench-html)")
    ap.add_argument("out", type=Path, help="the PNG to write")
    ap.add_argument("test", help="a substring of the test's name ('/': the report's front page, the tree)")
    ap.add_argument("--width", type=int, default=1500)
    ap.add_argument("--height", type=int, default=2200)
    ap.add_argument("--budget-ms", type=int, default=15000, help="virtual time the page gets to render")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium")
                    or shutil.which("chromium-browser") or "chromium")
    args = ap.parse_args(argv)
    tid, name = find_test(args.report, args.test) if args.test != "/" else ("", "the tree")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(args.report)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html" + (f"#/{tid}" if tid else "")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shoot(args.chromium, url, args.out.resolve(), args.width, args.height, args.budget_ms)
    finally:
        server.shutdown()
        server.server_close()
    try:  # a 256-colour palette keeps a UI screenshot legible at ~40 % of the size (Pillow: matplotlib's dep)
        from PIL import Image

        Image.open(args.out).convert("RGB").quantize(colors=256).save(args.out, optimize=True)
    except ImportError:
        pass
    print(f"screenshot: {name} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
