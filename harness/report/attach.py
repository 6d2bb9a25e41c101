"""Attach plots, tables and JSON to the current Allure test.

allure-python-commons works with or without a running pytest: outside a
test these calls are no-ops, so the harness can call them unconditionally.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import allure


@dataclass
class Captured:
    """What was attached while a :func:`capture` was open: tables (name, rows, columns) and PNGs (name, bytes).

    The claims plugin opens one per claim test, to put the paper-vs-measured table and the main figure
    into the test's page itself (the attachments stay as they are).
    """

    tables: list[tuple[str, list[Mapping[str, Any]], list[str]]] = field(default_factory=list)
    pngs: list[tuple[str, bytes]] = field(default_factory=list)


_OPEN: list[Captured] = []


@contextmanager
def capture() -> Iterator[Captured]:
    """Record every table and PNG attached through this module until the block ends (nestable)."""
    box = Captured()
    _OPEN.append(box)
    try:
        yield box
    finally:
        _OPEN.remove(box)


def attach_json(name: str, data: Any) -> None:
    allure.attach(
        json.dumps(data, indent=2, sort_keys=True, default=str),
        name=name,
        attachment_type=allure.attachment_type.JSON,
    )


def rows_to_csv(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> str:
    rows = list(rows)
    cols = list(columns) if columns is not None else (list(rows[0].keys()) if rows else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def attach_table(name: str, rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> str:
    rows = list(rows)
    cols = list(columns) if columns is not None else (list(rows[0].keys()) if rows else [])
    text = rows_to_csv(rows, cols)
    allure.attach(text, name=name, attachment_type=allure.attachment_type.CSV)
    for box in _OPEN:
        box.tables.append((name, rows, cols))
    return text


def attach_png(name: str, png: bytes) -> None:
    allure.attach(png, name=name, attachment_type=allure.attachment_type.PNG)
    for box in _OPEN:
        box.pngs.append((name, png))


def attach_figure(name: str, fig) -> bytes:
    """Render a matplotlib figure to PNG, attach it, close it, return the bytes."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    png = buf.getvalue()
    attach_png(name, png)
    return png


def attach_text(name: str, text: str) -> None:
    allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)
