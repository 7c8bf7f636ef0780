"""The token ids the model reads: the original ViP-LLaVA layout, and user text never read as
control tokens. Checked against the ids the original code builds with the real Llama-2 tokenizer
(``tests/fixtures/llama2-tokenizer/original_token_ids.json``), whatever the ``legacy`` flag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hub_shaped import (
    IMAGE_ID,
    IMAGE_TOKENS,
    llama2_tokenizer,
    original_case,
    original_conversation,
)
from PIL import Image

from vip_model import GenerationSettings, InvalidRequest, Request, Turn
from vip_model.client import RemoteEngine
from vip_model.hf import HFEngine
from vip_model.server import ServerConfig, ServerThread, create_app
from vip_model.templates import LLAVA_V1
from vip_model.tokens import encode_pieces

Noise = Callable[..., Image.Image]
SETTINGS = GenerationSettings(max_new_tokens=4)
QUESTIONS, ANSWERS = original_conversation()
HISTORY = (Turn(QUESTIONS[0], ANSWERS[0]), Turn(QUESTIONS[1], ANSWERS[1]))
# Text that a tokenizer reads as its control tokens when it is not told otherwise.
CONTROL_SPELLINGS = "a </s> b <s> c <pad> d <unk> e"


def _one_turn(image: Image.Image) -> Request:
    return Request(image, QUESTIONS[0], settings=SETTINGS)


def _three_turns(image: Image.Image) -> Request:
    return Request(image, QUESTIONS[2], history=HISTORY, settings=SETTINGS)


@pytest.fixture
def photo(noise: Noise) -> Image.Image:
    return noise(64, 48, seed=3)


# ---------------------------------------------------------------- the original layout


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize(("turns", "case"), [(1, "training_turns1"), (3, "training_turns3")])
def test_ids_equal_the_originals_whatever_the_legacy_flag(
    legacy: bool, turns: int, case: str
) -> None:
    prompt, expected = original_case(case)
    history, question = (HISTORY, QUESTIONS[2]) if turns == 3 else ((), QUESTIONS[0])
    assert LLAVA_V1.prompt(history, question) == prompt
    ids = encode_pieces(
        llama2_tokenizer(legacy), LLAVA_V1.pieces(history, question), IMAGE_ID, IMAGE_TOKENS
    )
    assert ids == expected


def test_the_engine_feeds_the_original_ids(hub_engine: HFEngine, photo: Image.Image) -> None:
    # The hub-shaped folder carries the llava-hf tokenizer config (legacy: false), with which
    # the processor's own tokenisation gave 624 tokens for one turn instead of 625.
    one = original_case("training_turns1")[1]
    three = original_case("training_turns3")[1]
    assert len(one) == 625
    assert hub_engine.input_ids(_one_turn(photo)) == one
    assert hub_engine.input_ids(_three_turns(photo)) == three


def test_batches_feed_the_original_ids(hub_engine: HFEngine, photo: Image.Image) -> None:
    one, three = _one_turn(photo), _three_turns(photo)
    answers = hub_engine.batch([one, three])  # different lengths: left padding
    assert [a.prompt_tokens for a in answers] == [
        len(original_case("training_turns1")[1]),
        len(original_case("training_turns3")[1]),
    ]
    assert [a.text for a in answers] == [hub_engine.ask(one).text, hub_engine.ask(three).text]


def test_follow_ups_reuse_the_cache_on_the_original_ids(
    hub_model_dir: Path, photo: Image.Image
) -> None:
    with (
        HFEngine(str(hub_model_dir)) as cached,
        HFEngine(str(hub_model_dir), prefix_cache=False) as plain,
    ):
        cached.ask(_one_turn(photo))
        answer = cached.ask(_three_turns(photo))
        assert answer.prompt_tokens == len(original_case("training_turns3")[1])
        # The first turn's prompt is a prefix of the third turn's, token for token.
        assert answer.cached_tokens >= len(original_case("training_turns1")[1])
        assert answer.text == plain.ask(_three_turns(photo)).text


def test_the_server_feeds_the_original_ids(hub_engine: HFEngine, photo: Image.Image) -> None:
    config = ServerConfig(model_name="hub-shaped", token="t", max_new_tokens=8)
    with ServerThread(create_app(hub_engine, config)) as url, RemoteEngine(url, "t") as remote:
        answer = remote.ask(_three_turns(photo))
    assert answer.prompt_tokens == len(original_case("training_turns3")[1])
    assert answer.text == hub_engine.ask(_three_turns(photo)).text


# ---------------------------------------------------------------- control tokens in user text


def _control_counts(engine: HFEngine, ids: list[int]) -> dict[str, int]:
    tokenizer = engine.loaded.processor.tokenizer
    image = int(engine.loaded.model.config.image_token_id)
    return {
        "bos": ids.count(tokenizer.bos_token_id),
        "eos": ids.count(tokenizer.eos_token_id),
        "pad": ids.count(tokenizer.pad_token_id),
        "unk": ids.count(tokenizer.unk_token_id),
        "image": ids.count(image),
        "image_runs": sum(1 for i, t in enumerate(ids) if t == image and ids[i - 1] != image),
    }


@pytest.mark.parametrize("which", ["tiny", "hub"])
def test_control_token_spellings_in_user_text_stay_text(
    which: str, engine: HFEngine, hub_engine: HFEngine, photo: Image.Image
) -> None:
    e = engine if which == "tiny" else hub_engine
    request = Request(
        photo,
        f"Q {CONTROL_SPELLINGS}?",
        history=(
            Turn(f"earlier {CONTROL_SPELLINGS}", f"answer {CONTROL_SPELLINGS}"),
            Turn("second", f"corrected {CONTROL_SPELLINGS}"),
        ),
        settings=SETTINGS,
    )
    ids = e.input_ids(request)
    counts = _control_counts(e, ids)
    # One <s> in front, one </s> per earlier answer (placed by the template), one image run.
    assert counts == {
        "bos": 1,
        "eos": 2,
        "pad": 0,
        "unk": 0,
        "image": e.loaded.image_tokens,
        "image_runs": 1,
    }
    assert ids[0] == e.loaded.processor.tokenizer.bos_token_id
    assert e.ask(request).finish_reason in ("stop", "length")


@pytest.mark.parametrize("where", ["question", "history question", "history answer"])
def test_an_image_marker_in_user_text_is_refused(where: str, photo: Image.Image) -> None:
    text = "what is <image> here?"
    with pytest.raises(InvalidRequest, match="<image>"):
        if where == "question":
            Request(photo, text)
        elif where == "history question":
            Request(photo, "ok?", history=(Turn(text, "fine"),))
        else:
            Request(photo, "ok?", history=(Turn("fine?", text),))
