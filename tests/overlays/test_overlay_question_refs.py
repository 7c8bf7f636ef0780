"""Structured region references in questions: placeholders, detection, rewriting."""

from __future__ import annotations

import pytest

import overlays as ov


def _two() -> list[ov.Prompt]:
    return ov.assign_distinct_colors(
        [ov.Rectangle((1, 1, 50, 50), label="cup"), ov.Arrow((100, 100), (60, 60))]
    )


def test_placeholders_become_referring_phrases_with_spans() -> None:
    prompts = _two()
    question, refs = ov.compose_question("<region0> or <bbox1>: which is left?", prompts)
    expected = (
        "The cup within the red rectangle or the object pointed to by the lime arrow: "
        "which is left?"
    )
    assert question == expected
    assert [question[r.start : r.end] for r in refs] == [
        "The cup within the red rectangle",
        "the object pointed to by the lime arrow",
    ]
    assert [r.prompt for r in refs] == [0, 1]


def test_bare_region_placeholder_means_the_first() -> None:
    question, refs = ov.compose_question("Describe <region>.", _two())
    assert question == "Describe the cup within the red rectangle."
    assert refs == [ov.RegionRef(0, 9, 41)]


def test_placeholder_beyond_the_prompts_is_an_error() -> None:
    with pytest.raises(ov.InvalidPrompt, match="region 2, but there are 2"):
        ov.compose_question("What about <region2>?", _two())


def test_free_text_marks_are_found_case_insensitively() -> None:
    question = "Is The Red Rectangle left of the lime arrow?"
    refs = ov.find_refs(question, _two())
    assert [(r.prompt, question[r.start : r.end]) for r in refs] == [
        (0, "The Red Rectangle"),
        (1, "the lime arrow"),
    ]


def test_full_phrase_wins_over_its_mark() -> None:
    question = "What is the cup within the red rectangle?"
    (ref,) = ov.find_refs(question, _two())
    assert question[ref.start : ref.end] == "the cup within the red rectangle"


def test_rewrite_keeps_the_form_of_each_span() -> None:
    old = _two()
    new = [
        ov.Point((5, 5), label="cup", style=ov.Style("blue")),
        ov.Ellipse((1, 1, 9, 9), style=ov.Style((1, 2, 3))),
    ]
    question, refs = ov.compose_question("<region0> vs the lime arrow?", old)
    refs = ov.find_refs(question, old)
    rewritten, new_refs = ov.rewrite_question(question, refs, old, new)
    assert rewritten == "The cup at the blue point vs the ellipse?"
    assert [rewritten[r.start : r.end] for r in new_refs] == [
        "The cup at the blue point",
        "the ellipse",
    ]


def test_question_without_marks_has_no_refs() -> None:
    question, refs = ov.compose_question("What is happening?", _two())
    assert question == "What is happening?" and refs == []
