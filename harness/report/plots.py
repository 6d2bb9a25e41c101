"""Matplotlib setup shared by every plot: headless backend, one style."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


def figure(width: float = 6.4, height: float = 4.2):
    """A new (fig, ax) pair with the suite's style."""
    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(True, alpha=0.3)
    return fig, ax


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def _sort_key(v):
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def scatter_panels(
    rows,
    panels,
    y: str,
    ylabel: str | None = None,
    group_by: str | None = None,
    title: str = "",
    log_x=(),
    ncols: int = 3,
    annotate=None,
):
    """One scatter panel per ``(column, x label)`` of ``panels``, each against the column ``y``.

    ``group_by``: a column whose distinct values (taken from the data, sorted) get their own marker and
    legend entry. ``log_x``: columns plotted on a log x axis (only when all their values are > 0).
    ``annotate``: optional callable ``column -> str`` whose text is put in the panel's corner (e.g. tau).
    Rows missing a panel's column (or with a non-finite value) are skipped in that panel.
    Returns the matplotlib figure.
    """
    import math

    rows = list(rows)
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.5 * nrows), squeeze=False)
    groups = sorted({r.get(group_by) for r in rows}, key=_sort_key) if group_by is not None else [None]

    def finite(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))

    for ax, (col, label) in zip(axes.flat, panels, strict=False):
        ax.grid(True, alpha=0.3)
        for gi, g in enumerate(groups):
            sel = [
                r
                for r in rows
                if (group_by is None or r.get(group_by) == g) and finite(r.get(col)) and finite(r.get(y))
            ]
            if not sel:
                continue
            ax.scatter(
                [r[col] for r in sel],
                [r[y] for r in sel],
                marker=_MARKERS[gi % len(_MARKERS)],
                s=22,
                label=None if group_by is None else f"{group_by} {g}",
            )
        vals = [r[col] for r in rows if finite(r.get(col))]
        if col in log_x and vals and min(vals) > 0:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(ylabel or y)
        if annotate is not None:
            ax.text(0.02, 0.97, annotate(col), transform=ax.transAxes, va="top", fontsize=8)
        if group_by is not None and len(groups) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def grouped_bars(categories, series, ylabel: str, title: str = "", xlabel: str = ""):
    """Grouped bar chart: one group per category, one bar per ``series`` entry (label -> values).

    Non-finite values are drawn as missing bars (a gap) and marked 'n/a' on the axis.
    Returns the matplotlib figure.
    """
    import math

    categories = list(categories)
    labels = list(series)
    k = max(1, len(labels))
    width = 0.8 / k
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.25 * len(categories) * k + 2.0)), 4.2))
    ax.grid(True, axis="y", alpha=0.3)
    for j, label in enumerate(labels):
        vals = [float(v) if v is not None else math.nan for v in series[label]]
        xs = [i + (j - (k - 1) / 2) * width for i in range(len(categories))]
        ax.bar(xs, [v if math.isfinite(v) else 0.0 for v in vals], width=width, label=label)
        for x, v in zip(xs, vals, strict=True):
            if not math.isfinite(v):
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels([str(c).replace("_", "\n") for c in categories], fontsize=7)
    ax.set_ylabel(ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
