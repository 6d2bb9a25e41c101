"""A benchmark's report page: its statistics, its side-by-side ratio, its ``extra_info`` and a figure.

Input is what pytest-benchmark keeps per benchmark (``Metadata.as_dict(include_data=True)``-shaped
``stats`` with the raw round timings in ``data``) and the benchmark's ``extra_info``. Conventions of
``extra_info`` read here (the benchmarks in benchmarks/ follow them):

- ``claim``: the claim id the benchmark supports (its place in the report tree, its link);
- a *ratio* is any numeric key with ``_over_`` in its name, or starting ``speedup``/``ratio``;
- the other side's samples: a list of seconds under a key ending ``_seconds_rounds`` (drawn beside the
  benchmark's own rounds), else its median under a key ending ``_seconds_median`` (drawn as a line).

No pytest here; benchmarks/conftest.py calls :func:`attach_benchmark`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.report.attach import attach_figure, attach_json, attach_table
from harness.report.claim_page import TABLE_STYLE, badge, fmt_value, png_data_uri, row_html

#: the statistics shown, in order: (stats key, label)
STAT_FIELDS = (
    ("min", "min (s)"),
    ("median", "median (s)"),
    ("iqr", "IQR (s)"),
    ("q1", "Q1 (s)"),
    ("q3", "Q3 (s)"),
    ("mean", "mean (s)"),
    ("stddev", "stddev (s)"),
    ("max", "max (s)"),
    ("rounds", "rounds"),
    ("iterations", "iterations per round"),
    ("ops", "ops (1/s, from the mean)"),
)


def stats_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{statistic, value}]`` for the fields of :data:`STAT_FIELDS` that the stats carry."""
    return [{"statistic": label, "value": stats[key]} for key, label in STAT_FIELDS if key in stats]


def ratio_rows(extra_info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The side-by-side ratios of a benchmark (see the module docstring for what counts as one)."""
    out = []
    for key, value in extra_info.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and ("_over_" in key or key.startswith(("speedup", "ratio"))):
            out.append({"ratio": key, "value": value})
    return out


def extra_info_rows(extra_info: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in extra_info.items()]


def other_sides(extra_info: Mapping[str, Any]) -> tuple[dict[str, list[float]], dict[str, float]]:
    """(samples by side name, medians by side name) of the other side(s) of a side-by-side benchmark."""
    samples: dict[str, list[float]] = {}
    medians: dict[str, float] = {}
    for key, value in extra_info.items():
        if key.endswith("_seconds_rounds") and isinstance(value, list) and value:
            samples[key.removesuffix("_seconds_rounds")] = [float(v) for v in value]
        elif key.endswith("_seconds_median") and isinstance(value, (int, float)) and not isinstance(value, bool):
            medians[key.removesuffix("_seconds_median")] = float(value)
    for side in samples:
        medians.pop(side, None)
    return samples, medians


def timing_figure(name: str, rounds: list[float], extra_info: Mapping[str, Any], side: str = "benchmarked"):
    """Both sides' timing distributions: box + every round, the other side's samples or median beside."""
    import statistics

    from harness.report.plots import figure

    samples, medians = other_sides(extra_info)
    own = statistics.median(rounds)
    for name_, med in list(medians.items()):  # a "<side>_seconds_median" equal to our median names our side
        if abs(med - own) <= 1e-9 * max(1.0, abs(own)):
            side = name_ if side == "benchmarked" else side
            del medians[name_]
    series = {f"{side} ({len(rounds)} rounds)": rounds}
    for other, values in samples.items():
        series[f"{other} ({len(values)} rounds)"] = values
    fig, ax = figure(6.4, 3.8)
    labels = list(series)
    data = [[v * 1e3 for v in series[k]] for k in labels]
    ax.boxplot(data, orientation="horizontal", widths=0.5, showfliers=False)
    for i, values in enumerate(data, start=1):
        ax.scatter(values, [i] * len(values), s=14, alpha=0.7, zorder=3)
    ax.set_yticks(range(1, len(labels) + 1))
    ax.set_yticklabels(labels, fontsize=8)
    for j, (other, med) in enumerate(medians.items()):
        ax.axvline(med * 1e3, ls="--", color=f"C{j + 1}", label=f"{other} median")
    if medians:
        ax.legend(fontsize=7)
    ax.set_xlabel("time per round (ms)")
    ratios = ", ".join(f"{r['ratio']} = {fmt_value(r['value'])}" for r in ratio_rows(extra_info))
    ax.set_title(f"{name}" + (f"\n{ratios}" if ratios else ""), fontsize=9)
    if data and all(v > 0 for vs in data for v in vs) and max(max(vs) for vs in data) > 20 * min(
        min(vs) for vs in data
    ):
        ax.set_xscale("log")
    fig.tight_layout()
    return fig


def _table(rows: list[dict[str, Any]], cols: tuple[str, str]) -> str:
    import html

    body = [row_html(list(cols), header=True)]
    body += [row_html([html.escape(str(r[cols[0]])), html.escape(fmt_value(r[cols[1]]))]) for r in rows]
    return f"<table {TABLE_STYLE}>" + "".join(body) + "</table>"


def bench_page_html(name: str, stats: Mapping[str, Any], extra_info: Mapping[str, Any], png: bytes | None,
                    outcome: str | None = None, claim_line: str = "", claims_report: str = "") -> str:
    """The HTML description of a benchmark test: ratio, statistics, extra_info, the figure inline."""
    import html

    e = html.escape
    ratios = ratio_rows(extra_info)
    parts = ['<div style="font-family:system-ui,sans-serif;line-height:1.4">',
             f'<p style="margin:0 0 6px 0;font-size:15px"><b>benchmark</b> {e(name)}</p>']
    if outcome:
        parts.append(f'<p style="margin:0 0 6px 0">{badge("passed" if outcome == "passed" else "failed")}'
                     f' <span style="color:#57606a">test outcome <b>{e(outcome)}</b></span></p>')
    if claim_line:
        link = (f' — <a href="{e(claims_report)}">the claims report</a>' if claims_report else "")
        parts.append(f'<p style="margin:0 0 6px 0">Supports {e(claim_line)}{link}</p>')
    parts.append('<h4 style="margin:8px 0 2px 0">Side by side</h4>')
    parts.append(_table(ratios, ("ratio", "value")) if ratios else
                 "<p>single-sided benchmark: no ratio recorded in extra_info</p>")
    parts.append('<h4 style="margin:8px 0 2px 0">Statistics (pytest-benchmark)</h4>')
    parts.append(_table(stats_rows(stats), ("statistic", "value")))
    if png is not None:
        parts.append(f'<img alt="timing distributions" src="{png_data_uri(png)}" '
                     'style="max-width:100%;height:auto;border:1px solid #d0d7de">')
    parts.append('<h4 style="margin:8px 0 2px 0">extra_info</h4>')
    parts.append(_table(extra_info_rows(extra_info), ("key", "value")))
    parts.append('<p style="color:#57606a;font-size:12px">Attachments: the same tables as CSV, the raw '
                 "round timings and extra_info as JSON, the figure as PNG.</p></div>")
    return "".join(parts)


def attach_benchmark(name: str, stats: Mapping[str, Any], extra_info: Mapping[str, Any]) -> bytes | None:
    """Attach a benchmark's tables (statistics, ratios, extra_info), its raw data and its figure.

    Returns the figure's PNG (None when there are no round timings).
    """
    attach_table(f"{name}: statistics", stats_rows(stats), ["statistic", "value"])
    ratios = ratio_rows(extra_info)
    if ratios:
        attach_table(f"{name}: side-by-side ratio", ratios, ["ratio", "value"])
    attach_table(f"{name}: extra_info", extra_info_rows(extra_info), ["key", "value"])
    attach_json(f"{name}: raw (stats with round timings, extra_info)", {"stats": dict(stats),
                                                                         "extra_info": dict(extra_info)})
    rounds = [float(v) for v in stats.get("data") or [] if isinstance(v, (int, float)) and math.isfinite(v)]
    if not rounds:
        return None
    return attach_figure(f"{name}: timing distributions", timing_figure(name, rounds, extra_info))
