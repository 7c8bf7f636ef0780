"""The engine interface's value types: validation, dict round trips, cancellation, streams."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable, Generator

import pytest
from PIL import Image

import overlays as ov
from vip_model import (
    MAX_NEW_TOKENS,
    Answer,
    CancelToken,
    EngineInfo,
    GenerationSettings,
    InvalidRequest,
    Request,
    Streamed,
    Timings,
    Turn,
    decode_image,
    encode_image,
)

# ---------------------------------------------------------------- settings


def test_default_settings_are_greedy() -> None:
    s = GenerationSettings()
    assert s.greedy and s.temperature == 0.0 and s.num_beams == 1 and s.seed is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": -0.1}, "temperature must be in"),
        ({"temperature": float("nan")}, "temperature must be a finite number"),
        ({"temperature": "0.5"}, "temperature must be a finite number"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, "top_p must be in"),
        ({"max_new_tokens": 0}, "max_new_tokens must be between 1"),
        ({"max_new_tokens": MAX_NEW_TOKENS + 1}, "max_new_tokens must be between"),
        ({"max_new_tokens": 10.0}, "max_new_tokens must be an integer"),
        ({"max_new_tokens": True}, "max_new_tokens must be an integer"),
        ({"num_beams": 0}, "num_beams"),
        ({"repetition_penalty": 0}, "repetition_penalty must be in"),
        ({"seed": -1}, "seed must be between"),
    ],
)
def test_bad_settings_say_what_is_allowed(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        GenerationSettings(**changes)  # type: ignore[arg-type]


def test_settings_from_dict_rejects_unknown_keys_and_names_the_allowed_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"unknown key\(s\) 'top_k'.*allowed: max_new_tokens"):
        GenerationSettings.from_dict({"temperature": 0.2, "top_k": 5})
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        GenerationSettings.from_dict([1, 2])


def test_settings_round_trip_and_replace() -> None:
    s = GenerationSettings(temperature=0.7, top_p=0.9, max_new_tokens=64, seed=3)
    assert GenerationSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.replace(temperature=0).greedy
    with pytest.raises(InvalidRequest, match="unknown"):
        s.replace(tempreature=0)
    # ints are accepted for float fields, and stored as floats
    assert GenerationSettings(temperature=1).temperature == 1.0


# ---------------------------------------------------------------- requests


def _image(w: int = 40, h: int = 30) -> Image.Image:
    return Image.new("RGB", (w, h), (10, 200, 30))


def test_request_validates_at_construction() -> None:
    with pytest.raises(InvalidRequest, match="question is empty"):
        Request(_image(), "  ")
    with pytest.raises(InvalidRequest, match="unknown template"):
        Request(_image(), "q", template="nope")
    with pytest.raises(InvalidRequest, match="PIL image"):
        Request("photo.jpg", "q")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="overlays prompts"):
        Request(_image(), "q", prompts=({"kind": "rectangle"},))  # type: ignore[arg-type]


def test_request_text_and_follow_up() -> None:
    r = Request(_image(), "What is it?", prompts=[ov.Rectangle((1, 1, 20, 20))])  # type: ignore[arg-type]
    assert isinstance(r.prompts, tuple)
    nxt = r.follow_up("A box.", "Why?")
    assert nxt.history == (Turn("What is it?", "A box."),)
    assert nxt.text().endswith("ASSISTANT: A box.</s>USER: Why? ASSISTANT:")
    assert nxt.prompts == r.prompts and nxt.image is r.image


def test_request_round_trips_through_json() -> None:
    r = Request(
        _image(),
        "What is within the red rectangle?",
        prompts=(ov.Rectangle((1, 2, 30, 25)), ov.Point((5, 5))),
        history=(Turn("a", "b"),),
        settings=GenerationSettings(temperature=0.5, seed=1),
        template="hf_card",
    )
    back = Request.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.prompts == r.prompts and back.history == r.history
    assert back.settings == r.settings and back.template == r.template
    assert back.question == r.question
    assert back.image.tobytes() == r.image.tobytes()


def test_request_from_dict_errors() -> None:
    good = Request(_image(), "q").to_dict()
    with pytest.raises(InvalidRequest, match="unknown key"):
        Request.from_dict({**good, "imagee": 1})
    with pytest.raises(InvalidRequest, match="missing key"):
        Request.from_dict({"image": good["image"]})
    with pytest.raises(InvalidRequest, match="question must be text"):
        Request.from_dict({**good, "question": 3})
    with pytest.raises(ov.InvalidPrompt):
        Request.from_dict({**good, "prompts": [{"kind": "blob"}]})
    with pytest.raises(InvalidRequest, match="unknown key"):
        Request.from_dict({**good, "settings": {"temp": 1}})


def test_decode_image_errors_are_the_overlays_ones() -> None:
    with pytest.raises(ov.ImageUnreadable, match="base64"):
        decode_image("not base64 !!")
    with pytest.raises(ov.ImageUnreadable, match="not an image"):
        decode_image(base64.b64encode(b"hello").decode())
    png = io.BytesIO()
    _image(100, 100).save(png, format="PNG")
    with pytest.raises(ov.ImageUnreadable, match="damaged"):
        decode_image(png.getvalue()[:60])
    with pytest.raises(ov.ImageTooLarge, match="over the limit"):
        decode_image(png.getvalue(), max_pixels=9_999)
    assert decode_image(encode_image(_image(100, 100))).size == (100, 100)


# ---------------------------------------------------------------- answers and info


def test_answer_and_info_round_trip() -> None:
    a = Answer("hi", "length", 10, 3, 2, Timings(0.5, 0.1, 0.9, 33.0), "m")
    assert Answer.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    with pytest.raises(InvalidRequest, match="finish_reason"):
        Answer.from_dict({**a.to_dict(), "finish_reason": "eos"})
    info = EngineInfo("transformers", "m", vision_feature_layer=(-2, 6))
    assert EngineInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


# ---------------------------------------------------------------- cancellation and streams


def test_cancel_token_across_threads() -> None:
    token = CancelToken()
    assert not token.cancelled and not token.wait(0.01)
    threading.Timer(0.01, token.cancel).start()
    assert token.wait(5) and token.cancelled


def _pieces(log: list[str]) -> Callable[[], Generator[str, None, Answer]]:
    def gen() -> Generator[str, None, Answer]:
        try:
            yield "a"
            yield "b"
            return Answer("ab", "stop")
        finally:
            log.append("closed")

    return gen


def test_streamed_yields_then_holds_the_answer() -> None:
    log: list[str] = []
    s = Streamed(_pieces(log)(), CancelToken())
    with pytest.raises(RuntimeError, match="not complete"):
        _ = s.answer
    assert list(s) == ["a", "b"]
    assert s.done and s.answer.text == "ab"
    assert list(s) == []  # exhausted streams stay exhausted, the answer stays
    assert s.result().text == "ab" and log == ["closed"]


def test_closing_a_stream_early_cancels_and_finalises_it() -> None:
    log: list[str] = []
    token = CancelToken()
    with Streamed(_pieces(log)(), token) as s:
        assert next(s) == "a"
    assert token.cancelled and log == ["closed"]
