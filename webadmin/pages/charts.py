"""Server-side SVG charts: bars and lines with axes, tick labels and units.

Pictures people read at a glance, drawn on the server so pages need no
JavaScript and no CDN, and the strict Content-Security-Policy holds: colours
come from classes in style.css, never from ``style=`` attributes. Every label
is escaped (plan and reseller names are operator text). Each bar and point
carries a ``<title>`` with its exact value, for a hover and for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 260
LEFT = 70  # room for y tick labels
RIGHT = 16
TOP = 30  # room for the title and legend
BOTTOM = 46  # room for x labels and the x axis caption
MAX_SERIES_CLASSES = 6


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | int | None]  # one per label; None = no data


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= value (axis top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-12):
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def ticks(top: float) -> list[float]:
    """Evenly spaced ticks from 0 to a nice_ceiling top, each itself a round number."""
    mantissa = top / 10 ** math.floor(math.log10(top)) if top > 0 else 1
    count = 4 if abs(mantissa - 2) < 1e-9 else 5
    return [top * i / count for i in range(count + 1)]


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _label_every(n: int, width: float, min_px: float = 48) -> int:
    if n <= 0:
        return 1
    return max(1, math.ceil(min_px / (width / n)))


def _frame(title: str, unit: str, x_caption: str, top: float,
           value_format: Callable[[float], str]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>']
    for t in ticks(top):
        y = TOP + plot_h - plot_h * (t / top)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{_fmt(y)}" x2="{WIDTH - RIGHT}" '
                     f'y2="{_fmt(y)}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{_fmt(y + 4)}" '
                     f'text-anchor="end">{escape(value_format(t))}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" '
                 f'y2="{TOP + plot_h}"/>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
                 f'y2="{TOP + plot_h}"/>')
    parts.append(f'<text class="unit" x="12" y="{TOP + plot_h / 2:.0f}" '
                 f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})" '
                 f'text-anchor="middle">{escape(unit)}</text>')
    parts.append(f'<text class="unit" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" '
                 f'y="{HEIGHT - 4}" text-anchor="middle">{escape(x_caption)}</text>')
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    if len(series) < 2:
        return []
    parts: list[str] = []
    x = WIDTH - RIGHT
    for i, s in reversed(list(enumerate(series))):
        label = escape(s.name)
        x -= 14 + 7 * min(len(s.name), 24)
        parts.append(f'<rect class="s{i % MAX_SERIES_CLASSES}" x="{x}" y="7" width="10" '
                     f'height="10"/><text class="legend" x="{x + 13}" y="16">{label}</text>')
    return parts


def _svg(parts: list[str], title: str) -> Markup:
    body = "".join(parts)
    # Every piece was built from escape()d text and numbers above.
    return Markup(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '  # noqa: S704
                  f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
                  f"{body}</svg>")


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    every = _label_every(len(labels), WIDTH - LEFT - RIGHT)
    y = HEIGHT - BOTTOM + 16
    return [f'<text class="tick" x="{_fmt(x)}" y="{y}" text-anchor="middle">{escape(lab)}</text>'
            for i, (lab, x) in enumerate(zip(labels, xs, strict=True)) if i % every == 0]


def _top(series: Sequence[Series], stacked: bool = False) -> float:
    if stacked and series:
        sums = [sum(float(v or 0) for v in col) for col in zip(*(s.values for s in series),
                                                               strict=True)]
        return nice_ceiling(max(sums, default=0.0))
    return nice_ceiling(max((float(v) for s in series for v in s.values if v is not None),
                            default=0.0))


def bar_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, unit: str,
              x_caption: str = "", value_format: Callable[[float], str] = _fmt) -> Markup:
    """Grouped bars: one group per label, one bar per series."""
    top = _top(series)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    n = max(1, len(labels))
    group_w = plot_w / n
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    parts = _frame(title, unit, x_caption, top, value_format)
    centres = [LEFT + group_w * (i + 0.5) for i in range(len(labels))]
    for si, s in enumerate(series):
        for i, v in enumerate(s.values):
            if v is None or v <= 0:
                continue
            h = plot_h * (float(v) / top)
            x = LEFT + group_w * i + group_w * 0.1 + bar_w * si
            tip = f"{labels[i]}: {value_format(float(v))}"
            if len(series) > 1:
                tip = f"{s.name}, {tip}"
            parts.append(f'<rect class="bar s{si % MAX_SERIES_CLASSES}" x="{_fmt(x)}" '
                         f'y="{_fmt(TOP + plot_h - h)}" width="{_fmt(bar_w)}" '
                         f'height="{_fmt(h)}"><title>{escape(tip)}</title></rect>')
    parts += _x_labels(labels, centres)
    parts += _legend(series)
    return _svg(parts, title)


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, unit: str,
               x_caption: str = "", value_format: Callable[[float], str] = _fmt) -> Markup:
    """One line per series over evenly spaced labels (hours, days); gaps where None."""
    top = _top(series)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    n = len(labels)
    step = plot_w / max(1, n - 1)
    xs = [LEFT + step * i if n > 1 else LEFT + plot_w / 2 for i in range(n)]
    parts = _frame(title, unit, x_caption, top, value_format)
    lines: list[str] = []
    dots: list[str] = []
    for si, s in enumerate(series):
        cls = f"s{si % MAX_SERIES_CLASSES}"
        run: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(s.values):
            if v is None:
                if run:
                    segments.append(run)
                run = []
                continue
            y = TOP + plot_h - plot_h * (float(v) / top)
            run.append(f"{_fmt(xs[i])},{_fmt(y)}")
            tip = f"{labels[i]}: {value_format(float(v))}"
            dots.append(f'<circle class="dot {cls}" cx="{_fmt(xs[i])}" cy="{_fmt(y)}" r="2.5">'
                         f"<title>{escape(tip)}</title></circle>")
        if run:
            segments.append(run)
        for seg in segments:
            lines.append(f'<polyline class="line {cls}" points="{" ".join(seg)}"/>')
    parts += lines + dots + _x_labels(labels, xs) + _legend(series)
    return _svg(parts, title)
