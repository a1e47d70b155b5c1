"""Charts as inline SVG, drawn on the server: the operator page needs no script and fetches
nothing (operators may sit where CDNs are blocked), and a chart library would weigh more than
these three shapes. Each chart scales to its container (a viewBox, no fixed width); each mark
carries a class (`bar`, `series`) and a <title> with its exact figure, which a browser shows on
hover and tests can count."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH = 640
ROW = 26          # height of a horizontal bar's row
LABEL = 190       # room for a horizontal bar's label
PLOT_HEIGHT = 180
# Colour-blind-safe series colours (Okabe–Ito).
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
           "#000000")


BAR_MAX = 40      # the widest a column gets, with few of them


def _svg(height: float, label: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>")


def horizontal_bars(label: str, rows: Sequence[tuple[str, float, str]]) -> Markup:
    """One bar per (name, value, value as shown), longest = full width."""
    top = max((value for _, value, _ in rows), default=0) or 1
    span = WIDTH - LABEL - 90
    marks = [] if rows else [f'<text x="{LABEL}" y="17">nothing yet</text>']
    for i, (name, value, shown) in enumerate(rows):
        y = i * ROW
        width = max(value / top * span, 1 if value else 0)
        marks.append(
            f'<text x="{LABEL - 6}" y="{y + 17}" text-anchor="end">{escape(_clip(name))}</text>'
            f'<rect class="bar" x="{LABEL}" y="{y + 4}" width="{width:.1f}" height="{ROW - 8}" '
            f'fill="{COLOURS[0]}"><title>{escape(name)}: {escape(shown)}</title></rect>'
            f'<text x="{LABEL + width + 6:.1f}" y="{y + 17}">{escape(shown)}</text>')
    return _svg(max(len(rows), 1) * ROW, label, "".join(marks))


def columns(label: str, bars: Sequence[tuple[str, float, str]], unit: str = "") -> Markup:
    """One vertical bar per (x label, value, value as shown), in order; the first and last x
    labels and the top value are written on the axes."""
    top = max((value for _, value, _ in bars), default=0) or 1
    left, bottom = 60, PLOT_HEIGHT + 10
    step = (WIDTH - left - 10) / max(len(bars), 1)
    width = max(min(step * 0.8, BAR_MAX), 0.5)
    marks = [_axes(left, bottom, f"{_compact(top)}{unit}")]
    if not bars:
        marks.append(_nothing(left, bottom))
    for i, (name, value, shown) in enumerate(bars):
        height = value / top * PLOT_HEIGHT
        marks.append(
            f'<rect class="bar" x="{left + i * step + (step - width) / 2:.1f}" '
            f'y="{bottom - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{COLOURS[0]}"><title>{escape(name)}: {escape(shown)}</title></rect>')
    marks.append(_x_labels(left, bottom, [name for name, _, _ in bars]))
    return _svg(bottom + 24, label, "".join(marks))


def lines(label: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]
          ) -> Markup:
    """One line per (name, values over `x_labels`), with a legend under the plot."""
    top = max((v for _, values in series for v in values), default=0) or 1
    left, bottom = 60, PLOT_HEIGHT + 10
    step = (WIDTH - left - 10) / max(len(x_labels) - 1, 1)
    marks = [_axes(left, bottom, _compact(top))]
    if not series:
        marks.append(_nothing(left, bottom))
    for n, (name, values) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(f"{left + i * step:.1f},{bottom - v / top * PLOT_HEIGHT:.1f}"
                          for i, v in enumerate(values))
        last = values[-1] if values else 0
        marks.append(
            f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>{escape(name)}: {_number(last)} now</title></polyline>')
        y = bottom + 30 + n * 18
        marks.append(f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + 18}" y="{y}">{escape(_clip(name, 60))}: '
                     f"{_number(last)}</text>")
    marks.append(_x_labels(left, bottom, x_labels))
    return _svg(bottom + 30 + len(series) * 18, label, "".join(marks))


def _axes(left: float, bottom: float, top_label: str) -> str:
    return (f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - 5}" y2="{bottom}" stroke="#888"/>'
            f'<line x1="{left}" y1="10" x2="{left}" y2="{bottom}" stroke="#888"/>'
            f'<text x="{left - 6}" y="16" text-anchor="end">{escape(top_label)}</text>'
            f'<text x="{left - 6}" y="{bottom}" text-anchor="end">0</text>')


def _nothing(left: float, bottom: float) -> str:
    return f'<text x="{left + 12}" y="{bottom - 12}">nothing yet</text>'


def _x_labels(left: float, bottom: float, names: Sequence[str]) -> str:
    if not names:
        return ""
    return (f'<text x="{left}" y="{bottom + 16}">{escape(names[0])}</text>'
            f'<text x="{WIDTH - 5}" y="{bottom + 16}" text-anchor="end">'
            f"{escape(names[-1])}</text>")


def _clip(text: str, length: int = 28) -> str:
    return text if len(text) <= length else "…" + text[-(length - 1):]


def _compact(value: float) -> str:
    """An axis figure in at most a few characters: 950, 12.5k, 1.3M."""
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= divisor:
            return f"{value / divisor:.1f}{suffix}"
    return _number(value)


def _number(value: float) -> str:
    """A figure as people read it: 1,234 or 0.25."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
