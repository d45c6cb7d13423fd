"""Inline SVG charts, drawn on the server: no JavaScript, no chart library, nothing fetched.

Every value placed in the markup is a number formatted here or a string passed through escape(),
so the result is safe to insert into the page as is.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 28  # margins around the plot area
POSITIVE, NEGATIVE, LINE, GRID = "#2f9e6e", "#d9534f", "#3b6fd4", "#e3e6ea"
MAX_DAYS = 90


def _frame(body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}"'
        f' xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>'
    )


def _y_axis(ticks: list[tuple[float, str]], y_of: Any) -> list[str]:
    parts = []
    for value, text in ticks:
        y = y_of(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(text)}</text>'
        )
    return parts


def outcomes_per_day(days: list[dict[str, Any]]) -> str:
    """Stacked bars per UTC day: positive outcomes (green) on negative ones (red)."""
    days = days[-MAX_DAYS:]
    if not days:
        return ""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = int(max(day["outcomes"] for day in days))
    slot = plot_w / len(days)
    bar = max(min(slot * 0.7, 28.0), 1.0)

    def y_of(count: float) -> float:
        return TOP + plot_h * (1 - count / peak)

    body = _y_axis([(0, "0"), (peak / 2, f"{peak / 2:g}"), (peak, str(peak))], y_of)
    label_every = max(1, len(days) // 6)
    for i, day in enumerate(days):
        x = LEFT + slot * i + (slot - bar) / 2
        positive = int(day["positive"] or 0)
        negative = int(day["outcomes"]) - positive
        tip = f"{day['day']}: {positive} positive, {negative} negative"
        tip += f", mean reward {day['mean_reward']:.2f}"
        body.append(f"<g><title>{escape(tip)}</title>")
        body.append(
            f'<rect x="{x:.1f}" y="{y_of(negative):.1f}" width="{bar:.1f}"'
            f' height="{y_of(0) - y_of(negative):.1f}" fill="{NEGATIVE}"/>'
        )
        body.append(
            f'<rect x="{x:.1f}" y="{y_of(negative + positive):.1f}" width="{bar:.1f}"'
            f' height="{y_of(negative) - y_of(negative + positive):.1f}" fill="{POSITIVE}"/>'
        )
        body.append("</g>")
        if i % label_every == 0 or i == len(days) - 1:
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{escape(str(day['day'])[5:])}</text>"
            )
    return _frame(body, "Outcomes per day")


def learning_curve(points: list[dict[str, Any]]) -> str:
    """Mean reward per slice of the outcome history, against outcomes recorded so far."""
    if not points:
        return ""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    last = max(points[-1]["outcomes"], 1)

    def x_of(n: float) -> float:
        return LEFT + plot_w * (n / last if len(points) > 1 else 0.5)

    def y_of(reward: float) -> float:
        return TOP + plot_h * (1 - reward)

    body = _y_axis([(0.0, "0"), (0.5, "0.5"), (1.0, "1")], y_of)
    coords = [(x_of(p["outcomes"]), y_of(p["mean_reward"])) for p in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    body.append(
        f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2.5"'
        f' stroke-linejoin="round"/>'
    )
    for (x, y), point in zip(coords, points, strict=True):
        tip = f"after {point['outcomes']} outcomes: mean reward {point['mean_reward']:.2f}"
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{LINE}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    body.append(f'<text x="{LEFT}" y="{HEIGHT - 8}">0</text>')
    body.append(
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{last} outcomes</text>'
    )
    return _frame(body, "Learning curve")
