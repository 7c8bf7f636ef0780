"""Rewriting region references: into <bboxN> tokens, and for redrawn marks."""

from __future__ import annotations

import pytest

import overlays as ov
from data_gen.refs import redraw_text, to_bbox_tokens

RECT = ov.Rectangle((10, 10, 100, 100), label="cup")
ARROW = ov.Arrow((300, 300), (120, 120), style=ov.Style(color="lime"))
BLUE_ARROW = ov.Arrow((300, 300), (50, 50), style=ov.Style(color="blue"))
GREY_POINT = ov.Point((50, 50), style=ov.Style(color=(120, 120, 120)))


def _ref(text: str, phrase: str, prompt: int = 0) -> ov.RegionRef:
    start = text.index(phrase)
    return ov.RegionRef(prompt, start, start + len(phrase))


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        # the full referring phrase keeps its noun, the token stands for "within the … rectangle"
        (
            "What is the cup within the red rectangle?",
            "the cup within the red rectangle",
            "What is the cup <bbox0>?",
        ),
        # a mark after a preposition the person typed: the preposition goes too
        ("What is the cup in the red rectangle?", "the red rectangle", "What is the cup <bbox0>?"),
        ("Describe the red rectangle.", "the red rectangle", "Describe the object <bbox0>."),
        ("The red rectangle holds what?", "The red rectangle", "The object <bbox0> holds what?"),
    ],
)
def test_to_bbox_tokens(text: str, phrase: str, expected: str) -> None:
    assert to_bbox_tokens(text, [_ref(text, phrase)], [RECT]) == expected


def test_to_bbox_tokens_two_regions_and_fallback_search() -> None:
    prompts = [RECT, ARROW]
    text, refs = ov.compose_question("Is <region0> left of <region1>?", prompts)
    assert to_bbox_tokens(text, refs, prompts) == "Is the cup <bbox0> left of the object <bbox1>?"
    # refs missing (an old row): found by searching the marks
    assert to_bbox_tokens(text, [], prompts) == "Is the cup <bbox0> left of the object <bbox1>?"
    # refs out of range are ignored, never a crash
    bad = [ov.RegionRef(5, 0, 3), ov.RegionRef(0, 40, 999)]
    assert "<bbox" in to_bbox_tokens(text, bad, prompts)


def test_redraw_text_renames_marks() -> None:
    text = "Is the cup within the red rectangle hot? The red rectangle is small."
    refs = [_ref(text, "the cup within the red rectangle"), _ref(text, "The red rectangle")]
    assert (
        redraw_text(text, refs, [RECT], [BLUE_ARROW])
        == "Is the cup pointed to by the blue arrow hot? The blue arrow is small."
    )
    # an unnamed colour is not named
    assert (
        redraw_text(
            "Describe the red rectangle.",
            [_ref("Describe the red rectangle.", "the red rectangle")],
            [RECT],
            [GREY_POINT],
        )
        == "Describe the point."
    )
    # a preposition before a bare mark follows the new shape
    text = "What is in the red rectangle?"
    assert redraw_text(text, [_ref(text, "the red rectangle")], [RECT], [BLUE_ARROW]) == (
        "What is pointed to by the blue arrow?"
    )
