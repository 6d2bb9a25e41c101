"""Benchmarks emit Allure pages: each benchmark test gets its statistics, side-by-side ratio, extra_info
(tables + JSON) and a figure of both sides' timing distributions, attached and shown inline on its page,
placed paper -> claim by ``extra_info["claim"]``. ``./run bench`` renders them into reports/bench-html.

pytest-benchmark disables itself under xdist: run with ``-p no:xdist`` (``./run bench`` does).
The work is in harness/report/bench.py; this only wires it to the ``benchmark`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import allure
import pytest

from fixtures.claims import CLAIMS_REPORT_FROM_BENCH, claims_by_id, epic_of
from harness.report.bench import attach_benchmark, bench_page_html


def _stats_of(benchmark: Any) -> dict[str, Any] | None:
    meta = getattr(benchmark, "stats", None)
    if meta is None or getattr(meta, "stats", None) is None:  # disabled (xdist) or never run
        return None
    stats = dict(meta.stats.as_dict())
    stats["data"] = list(meta.stats.data)
    stats["iterations"] = getattr(meta, "iterations", 1)
    return stats


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After the benchmark body (still inside the test, so the attachments land on the test itself)."""
    outcome = yield
    funcargs = getattr(item, "funcargs", {})
    if "benchmark" not in funcargs:
        return
    report_benchmark(item, funcargs["benchmark"], "failed" if outcome.excinfo else "passed")


def report_benchmark(item: pytest.Item, benchmark: Any, outcome: str) -> None:
    extra = dict(getattr(benchmark, "extra_info", {}) or {})
    claim = claims_by_id().get(str(extra.get("claim", "")))
    if claim is not None:
        allure.dynamic.epic(epic_of(claim))
        allure.dynamic.feature(claim.id)
        allure.dynamic.tag(claim.id)
        allure.dynamic.tag("benchmark")
        allure.dynamic.link(CLAIMS_REPORT_FROM_BENCH, name=f"claims report ({claim.id})")
    else:
        allure.dynamic.epic("Benchmarks")
        allure.dynamic.feature(item.module.__name__.split(".")[-1])
    stats = _stats_of(benchmark)
    if stats is None:
        allure.dynamic.description("pytest-benchmark recorded no timings (disabled under xdist: run ./run bench)")
        return
    name = item.name
    png = attach_benchmark(name, stats, extra)
    claim_line = f"{claim.id}: {claim.statement}" if claim is not None else ""
    allure.dynamic.description_html(bench_page_html(
        name, stats, extra, png, outcome=outcome, claim_line=claim_line,
        claims_report=CLAIMS_REPORT_FROM_BENCH if claim is not None else "",
    ))
