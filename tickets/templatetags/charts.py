"""Server-rendered SVG charts for the reports: ``{% chart chart %}``.

Pure SVG, no script and no style attribute (the Content-Security-Policy
allows neither inline): colours come from classes in static/css/reports.css,
which also has the print rules. Each chart is an image for assistive
technology (``role="img"`` with a ``<title>`` and a ``<desc>``); the page
puts the same numbers in a data table next to it. Every bar and point also
carries its own ``<title>``, shown as a tooltip.

Four kinds:

- ``hbar``: horizontal bars, one per category (several series side by
  side, or stacked with ``stacked=True``); category names can be long;
- ``columns``: vertical bars over time (grouped or stacked);
- ``line``: one line per series over time;
- ``histogram``: adjacent vertical bars over bins.
"""

import math
from dataclasses import dataclass, field

from django import template
from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()

WIDTH = 720
PALETTE_SIZE = 6  # .chart-s0 … .chart-s5 in reports.css


@dataclass
class Series:
    name: str
    values: list


@dataclass
class Chart:
    kind: str  # hbar, columns, line, histogram
    key: str  # unique on the page: element ids derive from it
    title: str
    description: str
    labels: list
    series: list = field(default_factory=list)
    stacked: bool = False
    decimals: int = 0
    unit: str = ""  # after each value: "%", " h"
    max_value: float | None = None  # the axis's end, when the scale has one (100 %, 5 stars)

    @property
    def is_empty(self):
        return not self.labels or all(not value for series in self.series for value in series.values)


@register.simple_tag
def chart(spec):
    """The SVG for a Chart (empty string for None)."""
    if spec is None:
        return ""
    draw = {"hbar": _hbar, "columns": _vertical, "line": _vertical, "histogram": _vertical}[spec.kind]
    width, height, body = draw(spec)
    key = escape(spec.key)
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart--{escape(spec.kind)}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{key}-title {key}-desc" focusable="false">'
        f'<title id="{key}-title">{escape(spec.title)}</title>'
        f'<desc id="{key}-desc">{escape(spec.description)}</desc>'
        f"{body}</svg>"
    )


# --- scales and text -------------------------------------------------------------------------


def nice_scale(largest, *, integer=False, ticks=4):
    """(top, step): a round axis end at or above ``largest`` and its tick step."""
    if not largest or largest <= 0:
        return (1, 1) if integer else (1.0, 0.25)
    raw = largest / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step >= raw:
            break
    if integer:
        step = max(1, math.ceil(step))
    top = step * math.ceil(largest / step - 1e-9)
    return top, step


def _number(value, decimals):
    return number_format(value, decimal_pos=decimals, use_l10n=True)


def _value_text(spec, value):
    if value is None:
        return "–"
    return f"{_number(value, spec.decimals)}{spec.unit}"


def _tick_text(spec, tick, step):
    """An axis tick: whole numbers without decimals when the step allows."""
    decimals = 0 if float(step).is_integer() else min(spec.decimals or 2, 2)
    return f"{_number(tick, decimals)}{spec.unit}"


def _shorten(text, limit):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(x):
    """Coordinates with at most one decimal: smaller SVG, same picture."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _css(index):
    return f"chart-s{index % PALETTE_SIZE}"


def _legend(spec, y=14):
    if len(spec.series) < 2:
        return ""
    parts, x = [], 8
    for index, series in enumerate(spec.series):
        name = escape(series.name)
        parts.append(
            f'<rect class="{_css(index)}" x="{x}" y="{y - 9}" width="12" height="12" rx="2"/>'
            f'<text class="chart-legend" x="{x + 17}" y="{y + 1}">{name}</text>'
        )
        x += 17 + 7 * len(series.name) + 22
    return f'<g class="chart-legend-items">{"".join(parts)}</g>'


def _largest(spec):
    if spec.max_value is not None:
        return spec.max_value
    if spec.stacked:
        sums = [sum(s.values[i] or 0 for s in spec.series) for i in range(len(spec.labels))]
        return max(sums, default=0)
    return max((v or 0 for s in spec.series for v in s.values), default=0)


def _integer_data(spec):
    return spec.decimals == 0


# --- horizontal bars --------------------------------------------------------------------------


def _hbar(spec):
    label_width, value_room = 230, 80
    left, right = label_width + 8, WIDTH - value_room
    top = 30 if len(spec.series) > 1 else 12
    grouped = len(spec.series) > 1 and not spec.stacked
    bar = 12 if grouped else 18
    row = (bar * len(spec.series) + 10) if grouped else bar + 10
    height = top + row * max(len(spec.labels), 1) + 28
    axis_top, step = nice_scale(_largest(spec), integer=_integer_data(spec))
    scale = (right - left) / axis_top
    parts = [_legend(spec)]

    bottom = top + row * len(spec.labels)
    tick = 0
    while tick <= axis_top + 1e-9:
        x = left + tick * scale
        parts.append(f'<line class="chart-grid" x1="{_fmt(x)}" y1="{top - 4}" x2="{_fmt(x)}" y2="{bottom}"/>')
        parts.append(
            f'<text class="chart-tick" x="{_fmt(x)}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(_tick_text(spec, tick, step))}</text>"
        )
        tick += step

    for i, label in enumerate(spec.labels):
        y0 = top + i * row
        parts.append(
            f'<text class="chart-label" x="{label_width}" y="{_fmt(y0 + row / 2 - 1)}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(_shorten(label, 34))}<title>{escape(label)}</title></text>'
        )
        offset = left
        for j, series in enumerate(spec.series):
            value = series.values[i]
            width = (value or 0) * scale
            if grouped:
                y = y0 + 5 + j * bar
                x = left
            else:
                y = y0 + 5
                x = offset if spec.stacked else left
            tooltip = f"{label} · {series.name}: {_value_text(spec, value)}" if len(spec.series) > 1 else f"{label}: {_value_text(spec, value)}"
            if width > 0:
                parts.append(
                    f'<rect class="{_css(j)}" x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(width)}" height="{bar - 2}">'
                    f"<title>{escape(tooltip)}</title></rect>"
                )
            if not spec.stacked:
                parts.append(
                    f'<text class="chart-value" x="{_fmt(x + width + 4)}" y="{_fmt(y + (bar - 2) / 2)}" '
                    f'dominant-baseline="middle">{escape(_value_text(spec, value))}</text>'
                )
            offset += width
        if spec.stacked:
            total = sum(s.values[i] or 0 for s in spec.series)
            parts.append(
                f'<text class="chart-value" x="{_fmt(offset + 4)}" y="{_fmt(y0 + 5 + (bar - 2) / 2)}" '
                f'dominant-baseline="middle">{escape(_value_text(spec, total))}</text>'
            )
    parts.append(f'<line class="chart-axis" x1="{left}" y1="{top - 4}" x2="{left}" y2="{bottom}"/>')
    return WIDTH, height, "".join(parts)


# --- vertical: columns, lines, histograms -----------------------------------------------------


def _vertical(spec):
    height = 300
    left, right = 64, WIDTH - 16
    top = 34 if len(spec.series) > 1 else 16
    bottom = height - 44
    n = max(len(spec.labels), 1)
    band = (right - left) / n
    axis_top, step = nice_scale(_largest(spec), integer=_integer_data(spec))
    scale = (bottom - top) / axis_top
    parts = [_legend(spec)]

    tick = 0
    while tick <= axis_top + 1e-9:
        y = bottom - tick * scale
        parts.append(f'<line class="chart-grid" x1="{left}" y1="{_fmt(y)}" x2="{right}" y2="{_fmt(y)}"/>')
        parts.append(
            f'<text class="chart-tick" x="{left - 6}" y="{_fmt(y)}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(_tick_text(spec, tick, step))}</text>"
        )
        tick += step

    every = max(1, math.ceil(n / 12))
    for i, label in enumerate(spec.labels):
        if i % every == 0:
            x = left + band * (i + 0.5)
            parts.append(
                f'<text class="chart-label" x="{_fmt(x)}" y="{bottom + 18}" text-anchor="middle">'
                f"{escape(_shorten(label, 14))}</text>"
            )

    if spec.kind == "line":
        parts += _lines(spec, left, band, bottom, scale)
    else:
        parts += _bars(spec, left, band, bottom, scale)
    parts.append(f'<line class="chart-axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    return WIDTH, height, "".join(parts)


def _bars(spec, left, band, bottom, scale):
    parts = []
    histogram = spec.kind == "histogram"
    inner = band * (0.96 if histogram else 0.72)
    groups = 1 if (spec.stacked or len(spec.series) == 1) else len(spec.series)
    bar = inner / groups
    for i, label in enumerate(spec.labels):
        x0 = left + band * i + (band - inner) / 2
        stacked_top = bottom
        for j, series in enumerate(spec.series):
            value = series.values[i] or 0
            h = value * scale
            if spec.stacked:
                x, y = x0, stacked_top - h
                stacked_top = y
            else:
                x, y = x0 + j * bar, bottom - h
            if h > 0:
                name = f"{label} · {series.name}" if len(spec.series) > 1 else label
                parts.append(
                    f'<rect class="{_css(j)}" x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(max(bar - 1, 1))}" '
                    f'height="{_fmt(h)}"><title>{escape(name)}: {escape(_value_text(spec, series.values[i]))}</title></rect>'
                )
        if histogram or (len(spec.labels) <= 16 and groups == 1):
            total = sum(s.values[i] or 0 for s in spec.series)
            if total:
                parts.append(
                    f'<text class="chart-value" x="{_fmt(x0 + inner / 2)}" y="{_fmt(stacked_top - 4 if spec.stacked else bottom - total * scale - 4)}" '
                    f'text-anchor="middle">{escape(_value_text(spec, total))}</text>'
                )
    return parts


def _lines(spec, left, band, bottom, scale):
    parts = []
    for j, series in enumerate(spec.series):
        segments, current = [], []
        for i, value in enumerate(series.values):
            if value is None:
                if current:
                    segments.append(current)
                current = []
                continue
            current.append((left + band * (i + 0.5), bottom - value * scale, spec.labels[i], value))
        if current:
            segments.append(current)
        for segment in segments:
            points = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y, _label, _value in segment)
            parts.append(f'<polyline class="chart-line {_css(j)}" points="{points}"/>')
        marker = "chart-marker" if len(spec.labels) <= 62 else "chart-marker chart-marker--small"
        for segment in segments:
            for x, y, label, value in segment:
                name = f"{label} · {series.name}" if len(spec.series) > 1 else label
                parts.append(
                    f'<circle class="{marker} {_css(j)}" cx="{_fmt(x)}" cy="{_fmt(y)}" r="3">'
                    f"<title>{escape(name)}: {escape(_value_text(spec, value))}</title></circle>"
                )
    return parts
