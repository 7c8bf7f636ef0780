"""Follow-up turns reuse the KV cache of the conversation prefix, with identical answers."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

import overlays as ov
from vip_model import Answer, GenerationSettings, Request
from vip_model.hf import HFEngine

Noise = Callable[..., Image.Image]
SETTINGS = GenerationSettings(max_new_tokens=32)


@pytest.fixture(scope="module")
def scratch(tiny_model_dir: Path) -> Iterator[HFEngine]:
    """The same model without a prefix cache: every answer computed from scratch."""
    with HFEngine(str(tiny_model_dir), prefix_cache=False) as e:
        yield e


def _image_end(engine: HFEngine, request: Request) -> int:
    """The length of the prompt prefix that ends with the last image token."""
    image_id = engine.loaded.model.config.image_token_id
    ids = engine.input_ids(request)
    return max(i for i, t in enumerate(ids) if t == image_id) + 1


def _conversation(engine: HFEngine, first: Request, questions: list[str]) -> list[Answer]:
    answers = [engine.ask(first)]
    request = first
    for q in questions:
        request = request.follow_up(answers[-1].text, q)
        answers.append(engine.ask(request))
    return answers


def test_follow_ups_hit_the_cache_and_answer_exactly_as_from_scratch(
    fresh_engine: HFEngine, scratch: HFEngine, noise: Noise
) -> None:
    first = Request(
        noise(96, 64, seed=21),
        "What is the object within the red rectangle?",
        prompts=(ov.Rectangle((8, 8, 60, 50)),),
        settings=SETTINGS,
    )
    questions = ["What color is it?", "Is there anything next to it?", "Thanks. Describe it."]
    cached = _conversation(fresh_engine, first, questions)
    fresh = _conversation(scratch, first, questions)
    assert [a.text for a in cached] == [a.text for a in fresh]
    assert [a.completion_tokens for a in cached] == [a.completion_tokens for a in fresh]
    assert cached[0].cached_tokens == 0 and all(a.cached_tokens == 0 for a in fresh)
    image_end = _image_end(fresh_engine, first)
    for previous, answer in itertools.pairwise(cached):
        # everything up to the previous prompt was cached, usually much more
        assert answer.cached_tokens >= previous.prompt_tokens - 1 >= image_end
        assert answer.cached_tokens < answer.prompt_tokens


def test_a_streamed_follow_up_uses_the_cache_too(
    fresh_engine: HFEngine, scratch: HFEngine, noise: Noise
) -> None:
    first = Request(noise(50, 70, seed=22), "What is it?", settings=SETTINGS)
    answer = fresh_engine.ask(first)
    follow = first.follow_up(answer.text, "And then?")
    stream = fresh_engine.stream(follow)
    assert "".join(stream) == stream.answer.text == scratch.ask(follow).text
    assert stream.answer.cached_tokens > 0


def test_asking_again_reuses_all_but_the_last_prompt_token(
    fresh_engine: HFEngine, noise: Noise
) -> None:
    r = Request(noise(40, 40, seed=23), "Describe it.", settings=SETTINGS)
    a = fresh_engine.ask(r)
    b = fresh_engine.ask(r)
    assert b.text == a.text and b.cached_tokens == b.prompt_tokens - 1


def test_a_new_question_on_the_same_marked_image_reuses_the_image(
    fresh_engine: HFEngine, scratch: HFEngine, noise: Noise
) -> None:
    image = noise(64, 64, seed=24)
    fresh_engine.ask(Request(image, "What is it?", settings=SETTINGS))
    other = Request(image, "How many people are there in the picture?", settings=SETTINGS)
    answer = fresh_engine.ask(other)
    assert answer.cached_tokens >= _image_end(fresh_engine, other)
    assert answer.text == scratch.ask(other).text


def test_an_equal_image_in_another_object_still_hits(fresh_engine: HFEngine, noise: Noise) -> None:
    first = Request(noise(64, 48, seed=27), "What is it?", settings=SETTINGS)
    answer = fresh_engine.ask(first)
    follow = first.follow_up(answer.text, "Why?")
    again = Request(first.image.copy(), follow.question, history=follow.history, settings=SETTINGS)
    assert fresh_engine.ask(again).cached_tokens > 0


@pytest.mark.parametrize("change", ["image", "prompts", "template", "beams"])
def test_no_reuse_when_the_model_would_see_something_else(
    change: str, fresh_engine: HFEngine, scratch: HFEngine, noise: Noise
) -> None:
    base = Request(
        noise(64, 48, seed=25), "What is it?", prompts=(ov.Point((20, 20)),), settings=SETTINGS
    )
    first = fresh_engine.ask(base)
    follow = base.follow_up(first.text, "Why?")
    if change == "image":
        follow = Request(
            noise(64, 48, seed=26), follow.question, follow.prompts, follow.history, SETTINGS
        )
    elif change == "prompts":
        follow = Request(
            follow.image, follow.question, (ov.Point((21, 20)),), follow.history, SETTINGS
        )
    elif change == "template":
        follow = Request(
            follow.image, follow.question, follow.prompts, follow.history, SETTINGS, "hf_card"
        )
    else:
        follow = Request(
            follow.image,
            follow.question,
            follow.prompts,
            follow.history,
            SETTINGS.replace(num_beams=2, max_new_tokens=6),
        )
    answer = fresh_engine.ask(follow)
    assert answer.cached_tokens == 0
    assert answer.text == scratch.ask(follow).text
