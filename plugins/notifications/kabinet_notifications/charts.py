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
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    width: int = 640,
    css_class: str = "",
    names: Mapping[str, str] | None = None,
) -> Markup:
    """Bars per bucket, one colour per series, with the total above each bar.

    The drawing scales to the page's width, so a phone gets its own narrower one
    (``width=360``): text stays readable and only as many dates are written as fit.
    ``names`` are what a person reads for each series (a status's label, not its code).
    """
    names = names or {}
    height, pad, top = 220, 28, 18
    n = max(len(labels), 1)
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    peak = max(totals or [0]) or 1
    slot = (width - pad) / n
    bar = max(slot * 0.7, 1)
    every = -(-n // max(int((width - pad) // 44), 1))
    """Write every ``every``-th date: a date needs about 44 units."""
    parts = [
        f'<svg viewBox="0 0 {width} {height + 40}" role="img" class="chart {css_class}" '
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
                f"<title>{escape(label)}: {escape(names.get(name, name))} {v}</title></rect>"
            )
        if totals[i] and slot >= 20:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" font-size="11" '
                f'text-anchor="middle">{totals[i]}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height + 16}" font-size="12" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped or a number


def bars(
    values: Mapping[str, int], *, title: str, names: Mapping[str, str] | None = None
) -> Markup:
    """Horizontal bars with the number beside each: a table whose text is the page's own
    size on a phone too (a bar is a one-rectangle SVG: the CSP allows no inline styles)."""
    names = names or {}
    peak = max(values.values() or [0]) or 1
    rows = [
        Markup(
            '<tr><th scope="row">{}</th><td class="bar"><svg viewBox="0 0 100 10" '
            'preserveAspectRatio="none" aria-hidden="true"><rect width="{:.1f}" height="10" '
            'fill="{}"/></svg></td><td class="num">{}</td></tr>'
        ).format(names.get(name, name), 100 * v / peak, COLORS.get(name, "#999"), v)
        for name, v in values.items()
    ]
    return Markup('<table class="notif-bars" aria-label="{}"><tbody>{}</tbody></table>').format(
        title, Markup("").join(rows)
    )
