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


def interval_chart(
    points: Sequence[tuple[str, float, float, float]],
    band: tuple[float, float, float] | None = None,
    y_label: str = "",
    width: int = 560,
    height: int = 260,
) -> str:
    """One point with its interval per (label, value, low, high), in order (batches over
    time), over a shaded `band` (value, low, high): what was promised, and what came true."""
    values = [v for _, *triple in points for v in triple if math.isfinite(v)]
    if band is not None:
        values += [v for v in band if math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max((high - low) * 0.1, 0.005)
    y0, y1 = low - pad, high + pad
    left, right, top, bottom = 52, 12, 24, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(points), 1)

    def y(value: float) -> float:
        return top + plot_h * (1.0 - (value - y0) / (y1 - y0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#cbd2d9"/>',
    ]
    if band is not None:
        centre, band_low, band_high = band
        parts.append(
            f'<rect x="{left}" y="{y(band_high):.1f}" width="{plot_w}" '
            f'height="{y(band_low) - y(band_high):.1f}" fill="{COLOURS[0]}" fill-opacity="0.25">'
            f"<title>evaluated {centre:.4f} [{band_low:.4f}, {band_high:.4f}]</title></rect>"
        )
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(centre):.1f}" y2="{y(centre):.1f}" '
            f'stroke="{COLOURS[0]}" stroke-dasharray="4 3"/>'
        )
    for tick in _ticks(y0, y1):
        parts.append(
            f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" {_FONT}>{tick:.3f}</text>'
        )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2}" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 12 {top + plot_h / 2})">{escape(y_label)}</text>'
    )
    colour = COLOURS[1]
    for i, (label, value, lo, hi) in enumerate(points):
        x = left + step * (i + 0.5)
        if math.isfinite(lo) and math.isfinite(hi):
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" '
                f'stroke="{colour}" stroke-width="1.5"/>'
            )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y(value):.1f}" r="3.5" fill="{colour}"><title>'
            f"{escape(label)}: {value:.4f} [{lo:.4f}, {hi:.4f}]</title></circle>"
        )
        text = escape(label if len(label) <= 14 else label[:13] + "…")
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="end" {_FONT} '
            f'transform="rotate(-30 {x:.1f} {top + plot_h + 14})">{text}</text>'
        )
    parts += _legend(["evaluated", "per batch"], left, 14)
    parts.append("</svg>")
    return "".join(parts)
