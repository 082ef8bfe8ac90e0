"""The dashboard's charts, drawn on the server as inline SVG (no script, so the page's CSP stays strict)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from admin_api import trends

OUTCOME_LABELS = {"answered": "Trả lời được", "choices": "Hỏi lại để chọn", "declined": "Chưa trả lời",
                  "law_lookup": "Tra cứu điều luật"}
OUTCOME_COLOURS = {"answered": "#2a9d8f", "choices": "#e9b949", "declined": "#c8553d", "law_lookup": "#7b4fa0"}
PALETTE = ("#1d6fb8", "#e07b00", "#2a9d8f", "#c0392b", "#7b4fa0", "#8c6d31")


def _nice_ceiling(value: float) -> tuple[float, float]:
    """A round axis maximum >= value and its tick step (4 ticks)."""
    if value <= 0:
        return 4.0, 1.0
    raw = value / 4
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * 4, step


def fmt(n: float) -> str:
    """A whole number with dots between thousands, as Vietnamese writes it."""
    return f"{n:,.0f}".replace(",", ".")


def _day_label(day: str) -> str:
    return f"{day[8:10]}/{day[5:7]}"


def line_chart(series: trends.DailySeries, lines: list[tuple[str, str, list[int], bool]], window: int) -> Markup:
    """Daily counts, one line per (key, label, values, emphasised); the last `window` days shaded."""
    width, height, left, right, top, bottom = 960, 300, 48, 16, 14, 34
    n = len(series.days)
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_ceiling(max([max(v) for _, _, v, _ in lines if v] + [1]))

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="Số câu hỏi theo ngày và chủ đề" xmlns="http://www.w3.org/2000/svg">']
    if 0 < window < n:
        x0 = x(n - window) - (plot_w / (n - 1) / 2 if n > 1 else 0)
        out.append(f'<rect x="{x0:.1f}" y="{top}" width="{left + plot_w - x0:.1f}" height="{plot_h}" fill="#eef4fb"/>')
        out.append(f'<text x="{left + plot_w - 4:.1f}" y="{top + 12}" text-anchor="end" class="axis">'
                   f'{window} ngày gần nhất</text>')
    out.extend(_y_grid(left, plot_w, top, plot_h, y_max, step, gap=6))
    every = max(1, round(n / 8))
    for i, day in enumerate(series.days):
        if (n - 1 - i) % every == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="middle" class="axis">'
                       f'{_day_label(day)}</text>')
    for (_key, label, values, strong), colour in zip(lines, PALETTE, strict=False):
        width_attr = f'stroke="{colour}" stroke-width="{3 if strong else 2}" fill="none"'
        done = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values[:-1] if n > 1 else values))
        out.append(f'<polyline points="{done}" {width_attr} stroke-linejoin="round" stroke-linecap="round">'
                   f'<title>{Markup.escape(label)}</title></polyline>')
        if n > 1:  # today is still going on: a dashed last segment
            out.append(f'<line x1="{x(n - 2):.1f}" y1="{y(values[-2]):.1f}" x2="{x(n - 1):.1f}" '
                       f'y2="{y(values[-1]):.1f}" {width_attr} stroke-dasharray="4 4"/>')
        for i, v in enumerate(values):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="{3 if strong else 2.2}" fill="{colour}">'
                       f'<title>{Markup.escape(label)} — {_day_label(series.days[i])}: {v}</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))


def outcome_bars(series: trends.DailySeries) -> Markup:
    """Stacked daily bars: answered / choices / declined / law lookups."""
    width, height, left, right, top, bottom = 460, 190, 40, 8, 10, 30
    n = len(series.days)
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_ceiling(max([*series.total, 1]))
    slot = plot_w / max(n, 1)
    bar = max(1.0, slot * 0.72)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Kết quả trả lời theo ngày" '
           'xmlns="http://www.w3.org/2000/svg">']
    out.extend(_y_grid(left, plot_w, top, plot_h, y_max, step))
    every = max(1, round(n / 6))
    for i, day in enumerate(series.days):
        base = top + plot_h
        x0 = left + slot * i + (slot - bar) / 2
        counts = ", ".join(f"{OUTCOME_LABELS[o]} {series.outcomes[o][i]}" for o in trends.OUTCOMES)
        tip = f"{_day_label(day)}: {counts}"
        out.append(f"<g><title>{Markup.escape(tip)}</title>")
        for outcome in trends.OUTCOMES:
            h = plot_h * series.outcomes[outcome][i] / y_max
            if h > 0:
                base -= h
                out.append(f'<rect x="{x0:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                           f'fill="{OUTCOME_COLOURS[outcome]}"/>')
        out.append("</g>")
        if (n - 1 - i) % every == 0:
            out.append(f'<text x="{x0 + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" class="axis">'
                       f'{_day_label(day)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(values: list[int], colour: str = "#1d6fb8") -> Markup:
    """A small daily line; the last (still running) day is dashed."""
    width, height = 120, 28
    top = max([*values, 1])
    n = len(values)
    pts = [(2 + (width - 4) * i / max(n - 1, 1), height - 3 - (height - 6) * v / top) for i, v in enumerate(values)]
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py in (pts[:-1] if n > 1 else pts))
    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" aria-hidden="true">'
             f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.6"/>']
    if n > 1:
        (x1, y1), (x2, y2) = pts[-2], pts[-1]
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                     'stroke-width="1.6" stroke-dasharray="3 3"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(share: float, colour: str = "#c8553d") -> Markup:
    w = max(0.0, min(1.0, share)) * 100
    return Markup(f'<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" '
                  f'xmlns="http://www.w3.org/2000/svg"><rect width="100" height="8" rx="2" fill="#e8ecf1"/>'
                  f'<rect width="{w:.1f}" height="8" rx="2" fill="{colour}"/></svg>')


def swatch(colour: str) -> Markup:
    return Markup(f'<svg class="swatch" viewBox="0 0 12 12" aria-hidden="true" xmlns="http://www.w3.org/2000/svg">'
                  f'<rect width="12" height="12" rx="3" fill="{colour}"/></svg>')


def _y_grid(left: float, plot_w: float, top: float, plot_h: float, y_max: float, step: float,
            gap: float = 5) -> list[str]:
    """Five horizontal grid lines with their values at the left (`gap` from the plot)."""
    out = []
    for k in range(5):
        yy = top + plot_h * (1 - step * k / y_max)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{left - gap}" y="{yy + 4:.1f}" text-anchor="end" class="axis">{fmt(step * k)}</text>')
    return out


def bar_chart(values: list[float], labels: list[str], title: str, *, tips: list[str] | None = None,
              every: int = 1, colour: str = "#1d6fb8") -> Markup:
    """Simple bars, one per value (hours of the day, weekdays), labelled every `every` bars."""
    width, height, left, right, top, bottom = 460, 190, 40, 8, 10, 30
    n = len(values)
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_ceiling(max([*values, 1]))
    slot = plot_w / max(n, 1)
    bar = max(1.0, slot * 0.72)
    out = [f'<svg class="pattern chart" viewBox="0 0 {width} {height}" role="img" aria-label="{Markup.escape(title)}" '
           'xmlns="http://www.w3.org/2000/svg">', *_y_grid(left, plot_w, top, plot_h, y_max, step)]
    for i, value in enumerate(values):
        h = plot_h * value / y_max
        x0 = left + slot * i + (slot - bar) / 2
        tip = tips[i] if tips else f"{labels[i]}: {fmt(value)}"
        out.append(f'<rect x="{x0:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                   f'fill="{colour}"><title>{Markup.escape(tip)}</title></rect>')
        if i % every == 0:
            out.append(f'<text x="{x0 + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" class="axis">'
                       f'{Markup.escape(labels[i])}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def pattern_charts(report: Any) -> tuple[Markup, Markup]:
    """The hour-of-day and weekday charts of a `reports.PatternsReport`."""
    hours = bar_chart([float(v) for v in report.hours], [f"{h}h" for h in range(24)], "Câu hỏi theo giờ trong ngày",
                      tips=[f"{h}:00–{h}:59: {fmt(v)} câu hỏi" for h, v in enumerate(report.hours)], every=3)
    short = ["T2", "T3", "T4", "T5", "T6", "T7", "CN"]
    days = bar_chart(report.weekday_average, short, "Câu hỏi trung bình theo thứ trong tuần",
                     tips=[f"{label}: trung bình {fmt(avg)} câu hỏi/ngày ({fmt(total)} trong {d} ngày)"
                           for label, avg, total, d in zip(report.weekday_labels, report.weekday_average,
                                                           report.weekdays, report.weekday_days, strict=True)],
                     colour="#2a9d8f")
    return hours, days
