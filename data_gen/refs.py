"""Rewriting the spans of a text that name a region: into ``<bboxN>`` tokens, or for a redrawn mark.

A turn stores where its question names each prompt (:class:`overlays.RegionRef` spans). A span
holds either the full referring phrase ("the cup within the red rectangle") or just the mark
("the red rectangle"), maybe after a preposition the person typed ("the cup in the red
rectangle"). ViP-LLaVA's trainer replaces ``<bboxN>`` by "within the red rectangle" (the
shape's word, the mark), so the token takes the place of the preposition and the mark together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import overlays as ov
from overlays import Prompt, RegionRef

#: Words a person may put before a mark; absorbed when the mark is rewritten. Longest first.
PREPOSITIONS: tuple[str, ...] = (
    "pointed to by",
    "pointed at by",
    "highlighted by",
    "indicated by",
    "marked with",
    "marked by",
    "shown by",
    "within",
    "inside",
    "with",
    "in",
    "at",
    "by",
)


@dataclass(frozen=True)
class _Span:
    start: int  # where the replaced text starts (may include a preposition)
    end: int
    prompt: int
    noun: str | None  # "the cup" when the span is a full referring phrase
    preposition: bool  # the replaced text includes a preposition before the mark
    capital: bool  # the replaced text starts with a capital letter


def usable_refs(text: str, refs: Sequence[RegionRef], prompts: Sequence[Prompt]) -> list[RegionRef]:
    """The stored refs that fit ``text`` and ``prompts``; when there are none, found ones.

    Refs out of range are dropped (a hand-edited log must not crash an export); a text whose
    stored refs are all unusable falls back to :func:`overlays.find_refs`.
    """
    good = [r for r in refs if 0 <= r.prompt < len(prompts) and 0 <= r.start < r.end <= len(text)]
    good.sort(key=lambda r: r.start)
    kept: list[RegionRef] = []
    for r in good:
        if not kept or r.start >= kept[-1].end:
            kept.append(r)
    if kept or not prompts:
        return kept
    return ov.find_refs(text, prompts)


def _spans(text: str, refs: Sequence[RegionRef], prompts: Sequence[Prompt]) -> list[_Span]:
    lowered = text.lower()
    out: list[_Span] = []
    floor = 0
    for ref in sorted(refs, key=lambda r: r.start):
        if ref.start < floor:
            continue
        prompt = prompts[ref.prompt]
        span = lowered[ref.start : ref.end]
        word, _ = ov.SHAPE_WORDS[prompt.kind]
        tail = f" {word} {ov.mark_phrase(prompt)}"
        if span == ov.referring_phrase(prompt).lower() or (
            span.endswith(tail) and span.startswith("the ") and len(span) > len(tail) + 4
        ):
            noun = text[ref.start : ref.end - len(tail)]
            out.append(_Span(ref.start, ref.end, ref.prompt, noun, True, noun[:1].isupper()))
        else:
            start = ref.start
            for prep in PREPOSITIONS:
                cut = ref.start - len(prep) - 1
                if (
                    cut >= floor
                    and lowered[cut : ref.start] == prep + " "
                    and (cut == 0 or not lowered[cut - 1].isalnum())
                ):
                    start = cut
                    break
            capital = text[start : start + 1].isupper()
            out.append(_Span(start, ref.end, ref.prompt, None, start != ref.start, capital))
        floor = ref.end
    return out


def _rewrite(text: str, spans: Sequence[_Span], fill: Callable[[_Span], str]) -> str:
    parts: list[str] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start])
        new = fill(span)
        if span.capital and span.noun is None:
            new = new[:1].upper() + new[1:]
        parts.append(new)
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


def to_bbox_tokens(
    text: str, refs: Sequence[RegionRef], prompts: Sequence[Prompt], token: str = "<bbox{n}>"
) -> str:
    """``text`` with each region reference as ViP-LLaVA's ``<bboxN>`` (N = the prompt's index).

    "the cup within the red rectangle" → "the cup <bbox0>"; "the cup in the red rectangle" →
    "the cup <bbox0>"; a bare "the red rectangle" → "the object <bbox0>" (the trainer puts
    "within the … rectangle" in place of the token). ``token="<bbox>"``: the one-region form.
    """

    def fill(span: _Span) -> str:
        token_n = token.format(n=span.prompt)
        if span.noun is not None:
            return f"{span.noun} {token_n}"
        return token_n if span.preposition else f"the object {token_n}"

    return _rewrite(text, _spans(text, usable_refs(text, refs, prompts), prompts), fill)


def redraw_text(
    text: str, refs: Sequence[RegionRef], old: Sequence[Prompt], new: Sequence[Prompt]
) -> str:
    """``text`` with each reference renamed for the redrawn prompts ``new`` (same order as old).

    "the cup within the red rectangle" → "the cup pointed to by the blue arrow"; "the red
    rectangle" → "the blue arrow"; an unnamed colour is not named: "the arrow".
    """

    def fill(span: _Span) -> str:
        prompt = new[span.prompt]
        mark = ov.mark_phrase(prompt)
        word, _ = ov.SHAPE_WORDS[prompt.kind]
        if span.noun is not None:
            return f"{span.noun} {word} {mark}"
        return f"{word} {mark}" if span.preposition else mark

    return _rewrite(text, _spans(text, usable_refs(text, refs, old), old), fill)


def answer_refs(answer: str, prompts: Sequence[Prompt]) -> list[RegionRef]:
    """Where an answer names a prompt ("The red rectangle holds a cup"): found, not stored."""
    return ov.find_refs(answer, prompts) if prompts else []


def to_region_tokens(
    text: str, refs: Sequence[RegionRef], prompts: Sequence[Prompt], token: str = "<region>"
) -> tuple[str, list[int]]:
    """``text`` with each region reference as one ``token``, and the prompt index of each
    token in order (VideoRefer: the i-th ``<region>`` takes the i-th object's masks).

    "What is the red rectangle doing?" → "What is <region> doing?"; "the cup within the red
    rectangle" → "the cup <region>"; "the cup in the red rectangle" → "the cup <region>".
    """
    spans = _spans(text, usable_refs(text, refs, prompts), prompts)

    def fill(span: _Span) -> str:
        # "the object within the red ellipse" (an unlabelled region) is just the region.
        if span.noun is None or span.noun.lower() == "the object":
            return token
        return f"{span.noun} {token}"

    return _rewrite(text, spans, fill), [span.prompt for span in spans]


def without_marks(text: str, refs: Sequence[RegionRef], prompts: Sequence[Prompt]) -> str:
    """``text`` naming its regions without their marks, for data whose frames carry none:
    "the cup within the red rectangle" → "the cup"; "The red rectangle holds a cup" → "The
    object holds a cup"; "the cup in the red rectangle" → "the cup"."""
    spans = _spans(text, usable_refs(text, refs, prompts), prompts)
    parts: list[str] = []
    pos = 0
    for span in spans:
        head = text[pos : span.start]
        if span.noun is not None:
            new = span.noun
        elif span.preposition:
            new, head = "", head.rstrip(" ")  # "the cup in the red rectangle" → "the cup"
        else:
            new = "The object" if span.capital else "the object"
        parts.append(head)
        parts.append(new)
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)
