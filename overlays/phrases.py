"""Referring phrases ("the person within the red rectangle") and colour assignment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from overlays.prompts import Prompt
from overlays.style import PALETTE

#: Words before and after the optional colour, per prompt kind (VIP_FACTS.md §2).
SHAPE_WORDS: dict[str, tuple[str, str]] = {
    "rectangle": ("within", "rectangle"),
    "ellipse": ("within", "ellipse"),
    "triangle": ("with", "triangle"),
    "point": ("at", "point"),
    "scribble": ("with", "scribble"),
    "contour": ("with", "mask contour"),
    "mask": ("with", "mask"),
    "arrow": ("pointed to by", "arrow"),
}


def referring_phrase(prompt: Prompt, noun: str | None = None) -> str:
    """The phrase that names the region ``prompt`` marks.

    ``noun`` defaults to the prompt's label, else "object": "the object within the red
    rectangle". An unnamed RGB colour is left out: "the object pointed to by the arrow".
    """
    before, after = SHAPE_WORDS[prompt.kind]
    thing = (noun or prompt.label or "object").strip()
    color = prompt.style.color_name
    mark = f"{color} {after}" if color else after
    return f"the {thing} {before} the {mark}"


def mark_phrase(prompt: Prompt) -> str:
    """Just the mark, without the region: "the red rectangle", "the arrow"."""
    _, after = SHAPE_WORDS[prompt.kind]
    color = prompt.style.color_name
    return f"the {color} {after}" if color else f"the {after}"


def distinct_colors(count: int, start: str = "red") -> list[str]:
    """``count`` palette names, all different while the palette lasts, starting at ``start``."""
    names = list(PALETTE)
    first = names.index(start) if start in names else 0
    order = names[first:] + names[:first]
    return [order[i % len(order)] for i in range(count)]


def assign_distinct_colors(prompts: Sequence[Prompt]) -> list[Prompt]:
    """Give several regions of one question distinct named colours.

    Prompts that already have a palette colour no other prompt uses keep it; the others get the
    first unused palette colours in order. Beyond 9 regions colours repeat.
    """
    used: set[str] = set()
    keep: list[bool] = []
    for p in prompts:
        name = p.style.color_name
        ok = name is not None and name not in used
        keep.append(ok)
        if ok and name is not None:
            used.add(name)
    free = [n for n in PALETTE if n not in used]
    out: list[Prompt] = []
    for p, ok in zip(prompts, keep, strict=True):
        if ok:
            out.append(p)
            continue
        name = free.pop(0) if free else distinct_colors(len(out) + 1)[-1]
        out.append(replace(p, style=p.style.with_color(name)))
    return out
