"""The top of a claim's report page: paper vs measured, the verdict and the main figure, as HTML.

Allure shows a test's ``descriptionHtml`` above everything else, expanded; attachments must be
clicked open. So the claims plugin puts what a reviewer needs at a glance there (the claim, the
paper's number beside ours, the verdict, the claim's main figure inlined as a ``data:`` URI) and
leaves the attachments as the data behind it. Pure functions: no pytest, no allure.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: rows of an extra table shown inline before it is cut (the attachment keeps all of them)
MAX_INLINE_ROWS = 30
#: characters of one cell shown inline
MAX_CELL_CHARS = 240

_COLOURS = {
    "reproduced": "#1a7f37",
    "known deviation": "#9a6700",
    "NOT reproduced": "#cf222e",
    "reported": "#0969da",
    "passed": "#1a7f37",
    "failed": "#cf222e",
}


@dataclass
class ClaimPage:
    """Everything the page header shows for one claim test."""

    claim_id: str
    statement: str
    section: str
    paper_ref: str
    paper_value: str
    tolerance: str
    profile: str
    #: the reason registered in spec.py when this claim is a known deviation at this profile
    registered_deviation: str | None = None
    #: where it was registered: "spec.py" (the embedded systems) or the user's --deviations file
    deviation_source: str = ""
    #: harness.target.Target.as_dict() of what the test measured (kind, name, URL, client version, chain id)
    target: dict[str, Any] = field(default_factory=dict)
    #: one dict per ``claim_report`` call: Verdict.as_dict()
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    #: pytest's outcome of the test's call phase: passed / failed / xfailed / xpassed / skipped
    outcome: str | None = None
    #: other tables the test attached whose name says "paper vs measured": (name, rows, columns)
    tables: list[tuple[str, Sequence[Mapping[str, Any]], Sequence[str]]] = field(default_factory=list)
    #: the claim's main figure: (name, PNG bytes)
    figure: tuple[str, bytes] | None = None
    #: names of the other figures (attachments, not inlined)
    other_figures: list[str] = field(default_factory=list)


def fmt_value(v: Any) -> str:
    """A measured value as a short string: 4 significant digits for floats, compact JSON for containers."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, (dict, list, tuple)):
        text = json.dumps(v, default=str, separators=(", ", ": "))
    else:
        text = str(v)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def verdict_label(reproduced: bool, registered_deviation: str | None, tolerance: str) -> str:
    """The verdict word shown on the page (one of the keys of ``_COLOURS``)."""
    if reproduced:
        return "reported" if tolerance.strip().lower().startswith("report") else "reproduced"
    return "known deviation" if registered_deviation else "NOT reproduced"


def badge(label: str) -> str:
    colour = _COLOURS.get(label, "#57606a")
    return (
        f'<span style="display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;'
        f'background:{colour};font-weight:600">{html.escape(label)}</span>'
    )


TABLE_STYLE = 'style="border-collapse:collapse;margin:6px 0 10px 0;font-size:13px;max-width:100%"'
_TH = 'style="text-align:left;border-bottom:2px solid #d0d7de;padding:3px 10px 3px 0"'
_TD = ('style="vertical-align:top;border-bottom:1px solid #eaeef2;padding:3px 10px 3px 0;'
       'white-space:normal;overflow-wrap:break-word;max-width:420px"')


def row_html(cells: Sequence[str], header: bool = False) -> str:
    tag, style = ("th", _TH) if header else ("td", _TD)
    return "<tr>" + "".join(f"<{tag} {style}>{c}</{tag}>" for c in cells) + "</tr>"


def verdict_table_html(page: ClaimPage, v: Mapping[str, Any]) -> str:
    """One verdict as a two-column table: the paper's value, each measured value, tolerance, verdict."""
    label = verdict_label(bool(v.get("reproduced")), page.registered_deviation, page.tolerance)
    rows = [row_html(["quantity", "value"], header=True)]
    rows.append(row_html(["<b>paper</b>", html.escape(str(v.get("paper_value", page.paper_value)))]))
    for key, value in (v.get("measured") or {}).items():
        rows.append(row_html([html.escape(str(key)), html.escape(fmt_value(value))]))
    rows.append(row_html(["<b>tolerance</b>", html.escape(str(v.get("tolerance", page.tolerance)))]))
    rows.append(row_html(["<b>verdict</b>", badge(label)]))
    out = f"<table {TABLE_STYLE}>" + "".join(rows) + "</table>"
    if v.get("detail"):
        out += f'<p style="margin:0 0 8px 0;color:#57606a;font-size:12px">{html.escape(str(v["detail"]))}</p>'
    return out


def rows_table_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A list of dict rows as an HTML table (the first ``MAX_INLINE_ROWS``; the attachment has them all)."""
    rows = list(rows)
    cols = list(columns) or (list(rows[0]) if rows else [])
    out = [row_html([html.escape(str(c)) for c in cols], header=True)]
    for r in rows[:MAX_INLINE_ROWS]:
        out.append(row_html([html.escape(fmt_value(r.get(c, ""))) for c in cols]))
    more = ""
    if len(rows) > MAX_INLINE_ROWS:
        more = f"<p>… {len(rows) - MAX_INLINE_ROWS} more rows in the attachment</p>"
    # a wide table scrolls sideways instead of squeezing its columns
    return f'<div style="overflow-x:auto"><table {TABLE_STYLE}>' + "".join(out) + "</table></div>" + more


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page_verdict(page: ClaimPage) -> str:
    """The page's overall verdict: the worst of its verdict records (none recorded: from the outcome)."""
    labels = [verdict_label(bool(v.get("reproduced")), page.registered_deviation, page.tolerance)
              for v in page.verdicts]
    for worst in ("NOT reproduced", "known deviation", "reproduced", "reported"):
        if worst in labels:
            return worst
    if page.outcome == "passed":
        return "reproduced"
    if page.outcome == "xfailed" and page.registered_deviation:
        return "known deviation"
    return "NOT reproduced" if page.outcome in ("failed", "xpassed") else "no verdict recorded"


def target_line(t: Mapping[str, Any]) -> str:
    """What was measured, in one line: kind and name, URL, client version, chain id (and the L1's)."""
    parts = [f"{t.get('kind', '?')}: {t.get('name', '')}".rstrip(": ")]
    if t.get("url"):
        parts.append(str(t["url"]))
    if t.get("client_version"):
        parts.append(f"client {t['client_version']}")
    if t.get("chain_id") is not None:
        parts.append(f"chain id {t['chain_id']}")
    if t.get("probe_error"):
        parts.append(f"identity unavailable ({t['probe_error']})")
    l1 = t.get("l1") or {}
    if l1:
        parts.append("L1 " + ", ".join(f"{k} {v}" for k, v in l1.items() if v not in ("", None)))
    return "; ".join(parts)


def claim_page_html(page: ClaimPage) -> str:
    """The HTML description of a claim test (self-contained: inline styles, the figure as a data: URI)."""
    e = html.escape
    parts = [
        '<div style="font-family:system-ui,sans-serif;line-height:1.4">',
        f'<p style="margin:0 0 6px 0;font-size:15px"><b>{e(page.claim_id)}</b> — {e(page.statement)}</p>',
        f'<p style="margin:0 0 6px 0">{badge(page_verdict(page))} '
        f'<span style="color:#57606a">profile <b>{e(page.profile)}</b>'
        + (f"; test outcome <b>{e(page.outcome)}</b>" if page.outcome else "")
        + f"; paper: {e(page.paper_ref)}, {e(page.section)}</span></p>",
    ]
    if page.target:
        parts.append(f'<p style="margin:0 0 6px 0;color:#57606a">Target: <b>{e(target_line(page.target))}</b></p>')
    if page.registered_deviation:
        source = page.deviation_source or "spec.py"
        parts.append(
            f'<p style="margin:0 0 6px 0;color:#9a6700">Known deviation registered in {e(source)}: '
            f"{e(page.registered_deviation)}</p>"
        )
    parts.append('<h4 style="margin:8px 0 2px 0">Paper vs measured</h4>')
    if page.verdicts:
        for v in page.verdicts:
            parts.append(verdict_table_html(page, v))
    else:
        parts.append(
            f"<table {TABLE_STYLE}>"
            + row_html(["<b>paper</b>", e(page.paper_value)])
            + row_html(["<b>tolerance</b>", e(page.tolerance)])
            + row_html(["<b>measured</b>", "no verdict recorded (the test ended before claim_report)"])
            + "</table>"
        )
    if page.figure is not None:
        name, png = page.figure
        parts.append(f'<h4 style="margin:8px 0 2px 0">{e(name)}</h4>')
        parts.append(
            f'<img alt="{e(name)}" src="{png_data_uri(png)}" style="max-width:100%;height:auto;'
            f'border:1px solid #d0d7de">'
        )
    for name, rows, cols in page.tables:
        parts.append(f'<h4 style="margin:8px 0 2px 0">{e(name)}</h4>')
        parts.append(rows_table_html(rows, cols))
    if page.other_figures:
        parts.append(
            '<p style="color:#57606a;font-size:12px">More figures in the attachments: '
            + e(", ".join(page.other_figures)) + "</p>"
        )
    parts.append(
        '<p style="color:#57606a;font-size:12px">The data behind this page (CSV tables, the verdict JSON, '
        "every figure) is in the attachments below.</p></div>"
    )
    return "".join(parts)
