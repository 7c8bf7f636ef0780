"""Referring phrases ("the person within the red rectangle") and colour assignment."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from overlays.errors import InvalidPrompt
from overlays.prompts import Prompt
from overlays.style import PALETTE

#: Words before and after the optional colour, per prompt kind (docs/VIP_FACTS.md §2).
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


def next_free_color(prompts: Sequence[Prompt]) -> str:
    """The first palette colour none of ``prompts`` uses (cycling once all nine are taken)."""
    used = {p.style.color_name for p in prompts}
    free = [name for name in PALETTE if name not in used]
    return free[0] if free else distinct_colors(len(prompts) + 1)[-1]


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


@dataclass(frozen=True)
class RegionRef:
    """A span ``question[start:end]`` that names prompt number ``prompt``.

    The span is either the prompt's full referring phrase ("the cup within the red rectangle")
    or just its mark ("the red rectangle"); :func:`rewrite_question` keeps the same form.
    """

    prompt: int
    start: int
    end: int


_PLACEHOLDER = re.compile(r"<(?:region|bbox)(\d*)>")


def compose_question(text: str, prompts: Sequence[Prompt]) -> tuple[str, list[RegionRef]]:
    """Replace ``<region0>``/``<bbox0>`` (``<region>`` = 0) with referring phrases.

    Returns the question and the spans of the phrases. A question without placeholders gets
    the spans of the marks it names (see :func:`find_refs`).
    """
    if not _PLACEHOLDER.search(text):
        return text, find_refs(text, prompts)
    out: list[str] = []
    refs: list[RegionRef] = []
    pos = 0
    length = 0
    for match in _PLACEHOLDER.finditer(text):
        index = int(match.group(1) or 0)
        if index >= len(prompts):
            raise InvalidPrompt(
                f"{match.group(0)} refers to region {index}, but there are {len(prompts)} "
                "prompt(s): number regions from 0"
            )
        before = text[pos : match.start()]
        out.append(before)
        length += len(before)
        phrase = referring_phrase(prompts[index])
        if not out[-1] and length == 0:
            phrase = phrase[0].upper() + phrase[1:]
        refs.append(RegionRef(index, length, length + len(phrase)))
        out.append(phrase)
        length += len(phrase)
        pos = match.end()
    out.append(text[pos:])
    return "".join(out), refs


def find_refs(question: str, prompts: Sequence[Prompt]) -> list[RegionRef]:
    """The spans of ``question`` naming a prompt: its referring phrase, else its mark.

    Case-insensitive; overlapping matches are dropped (the longer, full phrase wins).
    """
    lowered = question.lower()
    refs: list[RegionRef] = []
    candidates = [(referring_phrase(p).lower(), i) for i, p in enumerate(prompts)]
    candidates += [(mark_phrase(p).lower(), i) for i, p in enumerate(prompts)]
    for phrase, i in candidates:
        start = lowered.find(phrase)
        while start >= 0:
            end = start + len(phrase)
            if not any(r.start < end and start < r.end for r in refs):
                refs.append(RegionRef(i, start, end))
            start = lowered.find(phrase, end)
    return sorted(refs, key=lambda r: r.start)


def rewrite_question(
    question: str,
    refs: Sequence[RegionRef],
    old: Sequence[Prompt],
    new: Sequence[Prompt],
) -> tuple[str, list[RegionRef]]:
    """``question`` with each referenced span renamed for the redrawn prompts ``new``.

    A span holding the full referring phrase gets the new full phrase ("the cup pointed to by
    the blue arrow"); a span holding only the mark gets the new mark ("the blue arrow").
    """
    out: list[str] = []
    new_refs: list[RegionRef] = []
    pos = 0
    length = 0
    for ref in sorted(refs, key=lambda r: r.start):
        before = question[pos : ref.start]
        out.append(before)
        length += len(before)
        span = question[ref.start : ref.end]
        full = span.lower() == referring_phrase(old[ref.prompt]).lower()
        text = referring_phrase(new[ref.prompt]) if full else mark_phrase(new[ref.prompt])
        if span[:1].isupper():
            text = text[0].upper() + text[1:]
        new_refs.append(RegionRef(ref.prompt, length, length + len(text)))
        out.append(text)
        length += len(text)
        pos = ref.end
    out.append(question[pos:])
    return "".join(out), new_refs
