"""Queries for an item: as asked, and redrawn for the fragility sweep.

The sweep redraws each swept item's regions in other colours, widths and kinds — one axis at
a time, the others left at the base drawing (a red rectangle of width 3, the CLI's constant
style) — and rewrites the question's phrase for the new mark with the words ViP-LLaVA was
trained with ("within the red rectangle" → "pointed to by the blue arrow",
:data:`overlays.SHAPE_WORDS`). Prompts are generated as augmentation does
(:func:`overlays.generate`, seeded from the item id), so a rerun asks the same questions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import overlays as ov
from data_gen.evaluate.items import EvalItem

#: The values each axis takes (the base value first).
AXES: dict[str, tuple[str, ...]] = {
    "color": ("red", "lime", "blue", "yellow", "purple"),
    "width": ("3", "1", "6", "12"),
    "shape": ov.KINDS,
}
BASE = {"color": "red", "width": "3", "shape": "rectangle"}
_REGION = re.compile(r"<region(\d+)>")


class SweepError(ValueError):
    """An unknown sweep axis."""


def parse_axes(text: str) -> tuple[str, ...]:
    """``"color,width,shape"`` → the axes; raises :class:`SweepError` naming a wrong one."""
    axes = tuple(a.strip() for a in text.split(",") if a.strip())
    for axis in axes:
        if axis not in AXES:
            raise SweepError(f"unknown sweep axis {axis!r}: use {', '.join(AXES)}")
    if not axes:
        raise SweepError(f"no sweep axis: use some of {', '.join(AXES)}")
    return axes


@dataclass(frozen=True)
class Query:
    """One line of the batch file, and what it measures."""

    id: str
    item: EvalItem
    axis: str = ""  # "" for the item as asked; else the swept axis
    value: str = ""


def mark_words(prompt: ov.Prompt) -> str:
    """The words that point at a region with ``prompt``: "pointed to by the blue arrow"."""
    before, _ = ov.SHAPE_WORDS[prompt.kind]
    return f"{before} {ov.mark_phrase(prompt)}"


def draw(item: EvalItem, shape: str, color: str, width: float) -> tuple[list[ov.Prompt], str]:
    """The item's regions drawn as ``shape``, and its question naming them."""
    assert item.source is not None and item.sweep_question is not None
    size = ov.image_size(item.source)
    seed = int.from_bytes(hashlib.sha256(item.id.encode()).digest()[:4], "big")
    prompts = []
    colors = ov.distinct_colors(len(item.regions), color)
    for i, region in enumerate(item.regions):
        style = ov.Style(color=colors[i], width=width)
        prompt = ov.generate(shape, ov.fit_region(region, size), size, rng=seed + i, style=style)
        prompts.append(ov.fit_to_image(prompt, size))

    def words(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return mark_words(prompts[index]) if index < len(prompts) else match.group(0)

    return prompts, _REGION.sub(words, item.sweep_question)


def _line(
    query_id: str, item: EvalItem, prompts: Sequence[ov.Prompt], question: str
) -> dict[str, Any]:
    return {
        "id": query_id,
        "image": str(item.source),
        "question": question,
        "prompts": [ov.prompt_to_dict(p) for p in prompts],
    }


def base_line(item: EvalItem) -> dict[str, Any]:
    """The item as asked: as is when the image shows the prompts, else drawn in the base style."""
    if item.drawn:
        return {"id": item.id, "image": str(item.image), "question": item.question}
    prompts, question = draw(item, BASE["shape"], BASE["color"], float(BASE["width"]))
    return _line(item.id, item, prompts, question)


def queries(
    items: Sequence[EvalItem], axes: Sequence[str] = ()
) -> Iterator[tuple[Query, dict[str, Any]]]:
    """Every query to ask: each item, then (for the swept items) the base drawing and each
    other value of each axis. A value a region cannot take (a triangle in a sliver) is left
    out for that item; an item that repeats another's image, regions and question (the same
    ViP-Bench question in its other split) is swept once."""
    for item in items:
        yield Query(item.id, item), base_line(item)
    if not axes:
        return
    seen: set[tuple[object, ...]] = set()
    for item in items:
        # ViP-Bench asks the same question in both splits: one sweep of it is enough.
        key = (item.source, item.sweep_question, item.regions)
        if not item.sweepable or key in seen:
            continue
        seen.add(key)
        settings = [("base", "base", BASE)]
        for axis in axes:
            for value in AXES[axis][1:]:
                settings.append((axis, value, {**BASE, axis: value}))
        for axis, value, style in settings:
            try:
                prompts, question = draw(
                    item, style["shape"], style["color"], float(style["width"])
                )
            except ov.OverlayError:
                continue
            query = Query(f"{item.id}#{axis}={value}", item, axis, value)
            yield query, _line(query.id, item, prompts, question)
