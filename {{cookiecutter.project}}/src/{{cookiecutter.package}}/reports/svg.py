"""Charts as inline SVG text, so HTML reports render offline without scripts or CDNs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

COLOURS = ("#9aa5b1", "#1f6fb2", "#c2410c", "#15803d", "#7c3aed")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _legend(names: Sequence[str], x: float, y: float, offset: int = 0) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        left = x + i * 110
        colour = COLOURS[(i + offset) % len(COLOURS)]
        parts.append(f'<rect x="{left}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + 14}" y="{y}" {_FONT}>{escape(name)}</text>')
    return parts


def paired_bars(
    labels: Sequence[str], series: Mapping[str, Sequence[float]], width: int = 560
) -> str:
    """Horizontal bars: one group per label, one bar per series, values as shares in [0, 1]."""
    names = list(series)
    label_width, bar_height, gap = 150, 9, 8
    group = bar_height * len(names) + gap
    top = 22
    height = top + group * len(labels) + 4
    scale = max([v for values in series.values() for v in values] + [1e-9])
    plot = width - label_width - 52
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    parts += _legend(names, label_width, 12)
    for row, label in enumerate(labels):
        y = top + row * group
        text = escape(label if len(label) <= 24 else label[:23] + "…")
        middle = y + bar_height * len(names) / 2 + 4
        parts.append(
            f'<text x="{label_width - 6}" y="{middle}" text-anchor="end" {_FONT}>'
            f"<title>{escape(label)}</title>{text}</text>"
        )
        for i, name in enumerate(names):
            value = float(series[name][row])
            length = plot * value / scale
            top_y = y + i * bar_height
            colour = COLOURS[i % len(COLOURS)]
            parts.append(
                f'<rect x="{label_width}" y="{top_y}" width="{length:.1f}" '
                f'height="{bar_height - 1}" fill="{colour}"><title>{escape(name)}: '
                f"{value:.1%}</title></rect>"
            )
            parts.append(
                f'<text x="{label_width + length + 4:.1f}" y="{top_y + bar_height - 1}" '
                f"{_FONT}>{value:.1%}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def line_chart(
    lines: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    x_label: str = "",
    y_label: str = "",
    width: int = 420,
    height: int = 300,
) -> str:
    """Lines through (x, y) points, one per series; axes span the data (or [0, 1] if it fits)."""
    xs = [float(v) for x, _ in lines.values() for v in x if math.isfinite(float(v))]
    ys = [float(v) for _, y in lines.values() for v in y if math.isfinite(float(v))]
    bounds = []
    for values in (xs, ys):
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        if low >= 0.0 and high <= 1.0:
            low, high = 0.0, 1.0
        bounds.append((low, high if high > low else low + 1.0))
    (x0, x1), (y0, y1) = bounds
    left, right, top, bottom = 48, 12, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def point(x: float, y: float) -> str:
        px = left + plot_w * (x - x0) / (x1 - x0)
        py = top + plot_h * (1.0 - (y - y0) / (y1 - y0))
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#cbd2d9"/>',
    ]
    for tick in _ticks(x0, x1):
        px = point(tick, y0).split(",")[0]
        parts.append(
            f'<text x="{px}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>{tick:.3g}</text>'
        )
    for tick in _ticks(y0, y1):
        py = point(x0, tick).split(",")[1]
        parts.append(
            f'<text x="{left - 4}" y="{float(py) + 4:.1f}" text-anchor="end" {_FONT}>'
            f"{tick:.3g}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" {_FONT}>'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2}" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 12 {top + plot_h / 2})">{escape(y_label)}</text>'
    )
    for i, (x, y) in enumerate(lines.values()):
        points = " ".join(
            point(float(a), float(b))
            for a, b in zip(x, y, strict=True)
            if math.isfinite(float(a)) and math.isfinite(float(b))
        )
        colour = COLOURS[(i + 1) % len(COLOURS)]
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
        )
    parts += _legend(list(lines), left, 14, offset=1)
    parts.append("</svg>")
    return "".join(parts)
