"""Server-rendered SVG charts (no script): stacked bars by status, bars by channel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

COLORS = {
    "queued": "#8fa3c7",
    "sent": "#2f6fdf",
    "delivered": "#2e9e5b",
    "failed": "#d2453a",
    "skipped": "#c9a227",
    "email": "#2f6fdf",
    "sms": "#7a4fd0",
    "telegram": "#2aa0d8",
    "push": "#e07b24",
}


def stacked(
    labels: Sequence[str], series: Mapping[str, Sequence[int]], *, title: str, width: int = 640
) -> Markup:
    """Bars per bucket, one colour per series, with the total above each bar."""
    height, pad, top = 220, 28, 18
    n = max(len(labels), 1)
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    peak = max(totals or [0]) or 1
    slot = (width - pad) / n
    bar = max(slot * 0.7, 1)
    parts = [
        f'<svg viewBox="0 0 {width} {height + 40}" role="img" class="chart" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" stroke="#c5ccd8"/>',
    ]
    for i, label in enumerate(labels):
        x = pad + i * slot + (slot - bar) / 2
        y = float(height)
        for name, values in series.items():
            v = values[i]
            if not v:
                continue
            h = (height - top) * v / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLORS.get(name, "#999")}">'
                f"<title>{escape(label)}: {escape(name)} {v}</title></rect>"
            )
        if totals[i] and n <= 48:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" font-size="10" '
                f'text-anchor="middle">{totals[i]}</text>'
            )
        if n <= 14 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped or a number


def bars(values: Mapping[str, int], *, title: str, width: int = 640) -> Markup:
    """Horizontal bars with the number beside each."""
    row = 26
    peak = max(values.values() or [0]) or 1
    height = row * max(len(values), 1) + 4
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" class="chart" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (name, v) in enumerate(values.items()):
        y = i * row + 4
        w = (width - 200) * v / peak
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{escape(name)}</text>')
        parts.append(
            f'<rect x="90" y="{y}" width="{w:.1f}" height="18" fill="{COLORS.get(name, "#999")}"/>'
        )
        parts.append(f'<text x="{96 + w:.1f}" y="{y + 14}" font-size="12">{v}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped or a number
