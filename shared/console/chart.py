"""The overview's chart, drawn on the server: LIS messages received per hour (bars, left axis) and
the lag p95 of the messages processed in that hour (line, right axis), over the last 24 hours.

Pure geometry: :func:`activity_chart` turns hourly buckets into rectangles, a polyline and axis
labels; the template writes them as SVG elements with classes the stylesheet colours (no inline
style, no script).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 72, 16, 36


@dataclass(frozen=True)
class HourBucket:
    start: datetime
    messages: int
    lag_p95: float | None  # seconds; None when nothing was processed in that hour


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the tooltip (<title>): hour, count and lag


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom of the plotting area
    bars: list[Bar]
    lag_lines: list[str]  # SVG polyline "points", one per run of hours that had a lag
    lag_dots: list[Tick]
    left_ticks: list[Tick]
    right_ticks: list[Tick]
    hour_ticks: list[Tick]
    messages_total: int
    lag_max: float | None


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (an axis maximum people can read)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))  # pragma: no cover


def duration(seconds: float | None) -> str:
    """A lag for people: 0.4 s, 12 s, 3 min, 2.5 h."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _count(value: float) -> str:
    return f"{value:.0f}" if value >= 1 or value == 0 else f"{value:g}"


def activity_chart(buckets: list[HourBucket]) -> Chart:
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    plot_w, plot_h = right - left, bottom - top
    slot = plot_w / max(len(buckets), 1)
    count_max = nice_ceiling(max((b.messages for b in buckets), default=0))
    lags = [b.lag_p95 for b in buckets if b.lag_p95 is not None]
    lag_max = nice_ceiling(max(lags)) if lags else 1.0

    bars, dots, lines, current = [], [], [], []
    for i, b in enumerate(buckets):
        h = plot_h * b.messages / count_max
        label = f"{b.start:%H:00} UTC — {b.messages} message(s), lag p95 {duration(b.lag_p95)}"
        bars.append(Bar(x=round(left + i * slot + slot * 0.15, 1), y=round(bottom - h, 1),
                        width=round(slot * 0.7, 1), height=round(h, 1), label=label))
        if b.lag_p95 is None:
            if current:
                lines.append(" ".join(current))
            current = []
            continue
        x, y = round(left + (i + 0.5) * slot, 1), round(bottom - plot_h * b.lag_p95 / lag_max, 1)
        current.append(f"{x},{y}")
        dots.append(Tick(x=x, y=y, text=label))
    if current:
        lines.append(" ".join(current))

    fractions = (0.0, 0.5, 1.0)
    left_ticks = [Tick(x=left - 6, y=round(bottom - plot_h * f, 1), text=_count(count_max * f)) for f in fractions]
    right_ticks = [Tick(x=right + 6, y=round(bottom - plot_h * f, 1), text=duration(lag_max * f) if lags else "")
                   for f in fractions]
    hour_ticks = [Tick(x=round(left + (i + 0.5) * slot, 1), y=bottom + 16, text=f"{b.start:%H}h")
                  for i, b in enumerate(buckets) if i % 3 == 0]
    return Chart(width=WIDTH, height=HEIGHT, plot=(left, top, right, bottom), bars=bars, lag_lines=lines,
                 lag_dots=dots, left_ticks=left_ticks, right_ticks=right_ticks, hour_ticks=hour_ticks,
                 messages_total=sum(b.messages for b in buckets), lag_max=max(lags) if lags else None)
