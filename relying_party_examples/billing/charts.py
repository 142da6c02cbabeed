"""The geometry of a small server-rendered SVG bar chart (the template ``billing/_chart.html`` draws
it, with a title, a description and the same numbers as a table)."""
from __future__ import annotations

WIDTH, HEIGHT = 480, 220
TOP, BOTTOM, SIDE = 24, 28, 8  # room for the value above a bar and the month below it


def bar_chart(points: list[tuple[str, int]]) -> dict:
    """Bars for ``points`` [("YYYY-MM", value), …] scaled to the largest value."""
    values = [value for _, value in points]
    scale = max(values, default=0) or 1
    slot = (WIDTH - 2 * SIDE) / max(len(points), 1)
    plot = HEIGHT - TOP - BOTTOM
    bars = []
    for index, (month, value) in enumerate(points):
        height = round(plot * value / scale, 1)
        x = round(SIDE + index * slot + slot * 0.15, 1)
        # The month's short name under the bar is the template's (in the page's language).
        bars.append({"month": month, "value": value, "x": x, "y": round(TOP + plot - height, 1),
                     "width": round(slot * 0.7, 1), "height": height, "middle": round(x + slot * 0.35, 1)})
    return {"bars": bars, "width": WIDTH, "height": HEIGHT, "baseline": TOP + plot,
            "lowest": min(values, default=0), "highest": max(values, default=0)}
