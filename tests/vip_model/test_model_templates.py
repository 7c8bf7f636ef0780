"""Conversation templates, as exact strings (docs/VIP_FACTS.md §4)."""

from __future__ import annotations

import pytest

from vip_model import DEFAULT_TEMPLATE, TEMPLATES, InvalidRequest, Turn, build_prompt, get_template

SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


def test_the_default_is_the_template_the_model_was_trained_with() -> None:
    assert DEFAULT_TEMPLATE == "llava_v1"
    assert set(TEMPLATES) == {"llava_v1", "hf_card"}
    assert "default" in get_template("llava_v1").description


def test_llava_v1_first_turn() -> None:
    assert build_prompt([], "What is within the red rectangle?") == (
        SYSTEM + " USER: <image>\nWhat is within the red rectangle? ASSISTANT:"
    )


def test_llava_v1_multi_turn_ends_answers_with_eos_and_has_one_image() -> None:
    history = [Turn("What is it?", "A cup."), Turn("What colour?", "White.")]
    assert build_prompt(history, "Is it full?", "llava_v1") == (
        SYSTEM
        + " USER: <image>\nWhat is it? ASSISTANT: A cup.</s>"
        + "USER: What colour? ASSISTANT: White.</s>"
        + "USER: Is it full? ASSISTANT:"
    )


def test_hf_card_first_turn_is_the_model_card_prompt() -> None:
    assert build_prompt([], "Describe the image.", "hf_card") == (
        SYSTEM + "###Human: <image>\nDescribe the image.###Assistant:"
    )


def test_hf_card_multi_turn() -> None:
    history = [Turn("What is it?", "A cup.")]
    assert build_prompt(history, "Is it full?", "hf_card") == (
        SYSTEM
        + "###Human: <image>\nWhat is it?###Assistant: A cup.###Human: Is it full?###Assistant:"
    )
    assert get_template("hf_card").stop_strings == ("###",)
    assert get_template("llava_v1").stop_strings == ()


def test_surrounding_whitespace_is_dropped() -> None:
    assert build_prompt([Turn("  a ", "\tb\n")], " c ") == (
        SYSTEM + " USER: <image>\na ASSISTANT: b</s>USER: c ASSISTANT:"
    )


@pytest.mark.parametrize("question", ["", "   ", "\n"])
def test_empty_question_is_refused(question: str) -> None:
    with pytest.raises(InvalidRequest, match="question is empty"):
        build_prompt([], question)


def test_image_placeholder_in_text_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="<image>"):
        build_prompt([], "look <image> here")
    with pytest.raises(InvalidRequest, match="<image>"):
        Turn("<image>", "x")


def test_turn_without_answer_is_refused_with_the_fix() -> None:
    with pytest.raises(InvalidRequest, match="drop turns that have no answer"):
        Turn("What?", "")


def test_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(InvalidRequest, match="llava_v1, hf_card"):
        get_template("chatml")


def test_turn_round_trips_through_a_dict() -> None:
    turn = Turn("q", "a")
    assert Turn.from_dict(turn.to_dict()) == turn
    with pytest.raises(InvalidRequest):
        Turn.from_dict({"question": "q", "answer": "a", "extra": 1})
