"""Server-rendered SVG charts for the console (bar and line), escaped, sized for a laptop screen."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from core.clock import SHANGHAI

FONT = "'Noto Sans CJK SC','WenQuanYi Zen Hei',sans-serif"
PALETTE = ("#1f6feb", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#0a7f86", "#bc4c00")


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    import math

    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def bar_chart(
    title: str, items: Sequence[tuple[str, float]], *, width: int = 640, height: int = 300, unit: str = ""
) -> str:
    left, right, top, bottom = 56, 16, 48, 56
    w, h = width - left - right, height - top - bottom
    peak = _nice(max((v for _, v in items), default=0))
    n = max(len(items), 1)
    slot = w / n
    bar = max(4.0, slot * 0.62)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" style="width:100%;max-width:{width}px;height:auto" font-family="{FONT}">',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">{escape(title)}</text>',
    ]
    if not items:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#57606a">暂无数据</text></svg>'
        )
        return "".join(parts)
    for i in range(5):
        y = top + h - h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="1"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#57606a">'
            f"{peak * i / 4:g}</text>"
        )
    for i, (label, value) in enumerate(items):
        bh = h * (value / peak) if peak else 0
        x = left + slot * i + (slot - bar) / 2
        y = top + h - bh
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{bh:.1f}" fill="{color}" rx="2">'
            f"<title>{escape(label)}: {value:g}{escape(unit)}</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11" '
            f'class="value">{value:g}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{top + h + 18}" text-anchor="middle" font-size="12" '
            f'class="label">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def time_ticks(stamps: Sequence[float], most: int = 6) -> list[tuple[float, str]]:
    """Axis labels of a time series, in Beijing time, each distinct: at the points themselves when there are few,
    else evenly spread; `HH:MM` within a day, `MM-DD` for daily series, both when it spans days at finer steps."""
    if not stamps:
        return []
    t0, t1 = stamps[0], stamps[-1]
    n = len(stamps)
    picks = list(stamps) if n <= most else [stamps[round(i * (n - 1) / (most - 1))] for i in range(most)]
    local = [datetime.fromtimestamp(t, SHANGHAI) for t in picks]
    every = [datetime.fromtimestamp(t, SHANGHAI) for t in stamps]
    daily = all(d.hour == 0 and d.minute == 0 for d in every) and (t1 - t0 >= 86400 or n == 1)
    fmt = "%m-%d" if daily else "%H:%M" if local[0].date() == local[-1].date() else "%m-%d %H:%M"
    out: list[tuple[float, str]] = []
    for t, d in zip(picks, local, strict=True):
        label = d.strftime(fmt)
        if not out or out[-1][1] != label:
            out.append((t, label))
    return out


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[datetime, float]]]],
    *,
    width: int = 760,
    height: int = 300,
    unit: str = "",
) -> str:
    left, right, top, bottom = 60, 120, 36, 44
    w, h = width - left - right, height - top - bottom
    points = [p for _, pts in series for p in pts]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" style="width:100%;max-width:{width}px;height:auto" font-family="{FONT}">',
        f'<text x="{(width - right) / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">'
        f"{escape(title)}</text>",
    ]
    if not points:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#57606a">暂无数据</text></svg>'
        )
        return "".join(parts)
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    span = max(t1 - t0, 1.0)
    peak = _nice(max(p[1] for p in points))
    for i in range(5):
        y = top + h - h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#d0d7de"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#57606a">'
            f"{peak * i / 4:g}{escape(unit)}</text>"
        )
    for t, label in time_ticks(sorted({p[0].timestamp() for p in points})):
        x = left + w * (t - t0) / span
        parts.append(
            f'<text x="{x:.1f}" y="{top + h + 18}" text-anchor="middle" font-size="11" fill="#57606a" '
            f'class="tick">{label}</text>'
        )
    for k, (name, pts) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        coords = " ".join(
            f"{left + w * (p[0].timestamp() - t0) / span:.1f},{top + h - h * p[1] / peak:.1f}" for p in pts
        )
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        for p in pts:
            x, y = left + w * (p[0].timestamp() - t0) / span, top + h - h * p[1] / peak
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>{p[1]:g}</title></circle>')
        parts.append(f'<rect x="{left + w + 12}" y="{top + 18 * k}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{left + w + 30}" y="{top + 10 + 18 * k}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
