"""The evaluation as one PNG picture, drawn with Pillow like ``vipstudio report``'s: scores per
capability and split (a bar per model), then per swept axis the share of answers that changed
when the prompt was redrawn (the scores are in the table and the JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from data_gen.evaluate.report import Report, _pct, split_label
from data_gen.report import _font
from data_gen.safe_write import atomic_write

_BG, _INK, _GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)
#: One colour per model, in order (colour-blind-safe Okabe–Ito hues).
_MODEL_COLOURS = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233)]
_W, _LABEL_W, _BAR_H = 760, 190, 14


def _panel(
    draw: ImageDraw.ImageDraw, top: int, title: str, rows: Sequence[tuple[str, list[float]]]
) -> int:
    """Draw a panel of grouped bars (values 0–100) from ``top``; return the next free y."""
    draw.text((12, top + 6), title, fill=_INK, font=_font(18))
    y = top + 36
    width = _W - _LABEL_W - 70
    for x in (0, 25, 50, 75, 100):
        gx = _LABEL_W + round(width * x / 100)
        draw.line((gx, y - 4, gx, y + _rows_height(rows) - 8), fill=_GRID)
        draw.text((gx - 8, y + _rows_height(rows) - 6), str(x), fill=_INK, font=_font(12))
    small = _font(13)
    for label, values in rows:
        text = label if len(label) <= 26 else label[:25] + "…"
        draw.text((12, y + 1), text, fill=_INK, font=small)
        for i, value in enumerate(values):
            yb = y + i * _BAR_H
            length = max(1, round(width * value / 100))
            colour = _MODEL_COLOURS[i % len(_MODEL_COLOURS)]
            draw.rectangle((_LABEL_W, yb, _LABEL_W + length, yb + _BAR_H - 3), fill=colour)
            draw.text((_LABEL_W + length + 5, yb), f"{value:.1f}", fill=_INK, font=_font(11))
        y += len(values) * _BAR_H + 8
    return y + 24


def _rows_height(rows: Sequence[tuple[str, list[float]]]) -> int:
    return sum(len(v) * _BAR_H + 8 for _, v in rows)


def plot(report: Report, path: Path) -> Path:
    """Write the picture (temp file, then replace)."""
    groups = report.groups()
    score_rows = [
        (split_label(g), [_pct(per.get(m, [])) for m in report.models]) for g, per in groups.items()
    ]
    sweep = report.sweep()
    axes: dict[str, list[tuple[str, list[float]]]] = {}
    for model_index, model in enumerate(report.models):
        for axis, values in sweep.get(model, {}).items():
            if axis == "base":
                continue
            rows = axes.setdefault(axis, [])
            for value, cell in values.items():
                row = next((r for r in rows if r[0] == value), None)
                if row is None:
                    row = (value, [0.0] * len(report.models))
                    rows.append(row)
                row[1][model_index] = cell["changed"]
    height = 70 + _rows_height(score_rows) + 70
    height += sum(_rows_height(rows) + 70 for rows in axes.values())
    image = Image.new("RGB", (_W, height), _BG)
    draw = ImageDraw.Draw(image)
    x = 12
    for i, model in enumerate(report.models):  # the legend
        colour = _MODEL_COLOURS[i % len(_MODEL_COLOURS)]
        draw.rectangle((x, 14, x + 14, 28), fill=colour)
        name = model if len(model) <= 40 else "…" + model[-39:]
        draw.text((x + 20, 12), name, fill=_INK, font=_font(14))
        x += 40 + int(draw.textlength(name, font=_font(14)))
    metric = "keyword rule (approximate)" if report.metric == "keyword" else report.metric
    y = _panel(draw, 40, f"{report.source}: {metric} score x100", score_rows)
    for axis, rows in axes.items():
        y = _panel(draw, y, f"sweep: {axis}, answers changed % (vs a red rectangle)", rows)
    with atomic_write(path, "wb", suffix=".png") as fh:
        image.save(fh, format="PNG")
    return path
