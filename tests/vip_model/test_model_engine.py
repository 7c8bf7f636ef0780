"""The transformers engine on the real tiny model: inputs, streaming, batching, cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import overlays as ov
from vip_model import (
    CancelToken,
    Engine,
    GenerationSettings,
    InvalidRequest,
    ModelError,
    Request,
    Turn,
)
from vip_model.hf import HFEngine, model_input_image
from vip_model.streaming import Detokenizer

Noise = Callable[..., Image.Image]
GREEDY = GenerationSettings(max_new_tokens=24)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])


def _rgb(pixel_values: torch.Tensor) -> np.ndarray:
    """Processor output (1, 3, S, S) back to 0..255 RGB (S, S, 3)."""
    x = pixel_values[0].permute(1, 2, 0).numpy()
    return (x * CLIP_STD + CLIP_MEAN) * 255


def test_engine_info_and_protocol(engine: HFEngine) -> None:
    info = engine.info()
    assert isinstance(engine, Engine)
    assert info.loaded and info.engine == "transformers"
    assert (info.device, info.dtype, info.attn_implementation) == ("cpu", "float32", "sdpa")
    assert info.quantization is None and not info.config_corrected
    assert info.image_tokens == 16 and info.image_size == 56
    assert info.vision_feature_layer == (-2, -5, -8, -11, 6)
    assert info.prefix_cache and info.default_template == "llava_v1"


def test_input_ids_are_what_the_llava_processor_makes(engine: HFEngine, noise: Noise) -> None:
    r = Request(noise(90, 40), "What is it?", history=(Turn("Hi", "Hello there."),))
    processor = engine.loaded.processor
    expected = processor(images=model_input_image(r.image), text=r.text(), return_tensors="pt")
    assert engine.input_ids(r) == expected["input_ids"][0].tolist()
    assert torch.equal(engine.pixel_values(r), expected["pixel_values"])


# ---------------------------------------------------------------- padding, not cropping


def test_marks_near_the_long_edge_survive_padding(engine: HFEngine) -> None:
    image = Image.new("RGB", (224, 56), (90, 90, 90))
    block = ov.Mask(
        polygons=(((196, 8), (222, 8), (222, 48), (196, 48)),), style=ov.Style("red", alpha=255)
    )
    request = Request(image, "What is in the red mask?", prompts=(block,))

    seen = model_input_image(image, [block])
    assert seen.size == (224, 224)
    assert seen.getpixel((5, 5)) == ov.PAD_COLOR and seen.getpixel((5, 220)) == ov.PAD_COLOR
    assert seen.getpixel((210, 112)) == (255, 0, 0)  # the block, at 84 + 28 after centring

    px = _rgb(engine.pixel_values(request))
    assert px.shape == (56, 56, 3)
    assert np.allclose(px[2, 28], ov.PAD_COLOR, atol=2)  # padding above the image
    assert np.allclose(px[28, 52], (255, 0, 0), atol=3)  # the mark, kept at the right edge

    # What the processor alone does: resize the short side, centre-crop — the mark is gone.
    alone = engine.loaded.processor.image_processor(
        images=ov.render(image, [block]), return_tensors="pt"
    )["pixel_values"]
    red = _rgb(alone)
    assert not ((red[..., 0] > 200) & (red[..., 1] < 60)).any()


# ---------------------------------------------------------------- answering


def test_ask_is_deterministic_and_reports_counts_and_timings(
    fresh_engine: HFEngine, noise: Noise
) -> None:
    r = Request(
        noise(64, 48),
        "Describe the object within the red rectangle.",
        prompts=(ov.Rectangle((4, 4, 40, 30)),),
        settings=GREEDY,
    )
    a = fresh_engine.ask(r)
    fresh_engine.prefix_cache.clear()
    b = fresh_engine.ask(r)
    assert a.text == b.text and a.text
    assert a.prompt_tokens == len(fresh_engine.input_ids(r))
    assert 1 <= a.completion_tokens <= 24 and a.cached_tokens == 0
    assert a.finish_reason in ("stop", "length")
    t = a.timings
    assert t.load_s == 0.0 and 0 < t.ttft_s <= t.total_s and t.tokens_per_s > 0
    assert a.model == str(fresh_engine.options.model)


def test_stream_pieces_add_up_to_the_answer(fresh_engine: HFEngine, noise: Noise) -> None:
    r = Request(
        noise(80, 60, seed=3),
        "What color is the car?",
        settings=GenerationSettings(max_new_tokens=80),
    )
    stream = fresh_engine.stream(r)
    pieces = list(stream)
    answer = stream.answer
    assert len(pieces) > 1 and all(pieces)
    assert "".join(pieces) == answer.text
    fresh_engine.prefix_cache.clear()
    assert fresh_engine.ask(r).text == answer.text
    assert answer.timings.ttft_s < answer.timings.total_s


def _batch_requests(noise: Noise) -> list[Request]:
    return [
        Request(
            noise(64, 48, seed=1),
            "What is within the red rectangle?",
            prompts=(ov.Rectangle((2, 2, 30, 30)),),
            settings=GREEDY,
        ),
        Request(noise(30, 90, seed=2), "Hi", settings=GREEDY),
        Request(
            noise(56, 56, seed=3),
            "Describe the image in detail, please, with every object.",
            history=(Turn("What is it?", "A photo of a kitchen."),),
            settings=GREEDY,
        ),
        Request(
            noise(120, 80, seed=4),
            "Where is the arrow pointing?",
            prompts=(ov.Arrow((10, 10), (60, 40)),),
            settings=GREEDY,
            template="hf_card",
        ),
        Request(noise(100, 50, seed=5), "How many people are there?", settings=GREEDY),
    ]


def test_greedy_batch_equals_one_by_one(fresh_engine: HFEngine, noise: Noise) -> None:
    requests = _batch_requests(noise)
    one_by_one = []
    for r in requests:
        fresh_engine.prefix_cache.clear()
        one_by_one.append(fresh_engine.ask(r))
    batched = fresh_engine.batch(requests)
    assert [a.text for a in batched] == [a.text for a in one_by_one]
    assert [a.completion_tokens for a in batched] == [a.completion_tokens for a in one_by_one]
    assert [a.finish_reason for a in batched] == [a.finish_reason for a in one_by_one]
    assert [a.prompt_tokens for a in batched] == [a.prompt_tokens for a in one_by_one]


def test_batches_are_split_by_max_batch_size(
    tiny_model_dir: Path, engine: HFEngine, noise: Noise
) -> None:
    requests = _batch_requests(noise)
    with HFEngine(str(tiny_model_dir), max_batch_size=2, prefix_cache=False) as pairs:
        assert [a.text for a in pairs.batch(requests)] == [a.text for a in engine.batch(requests)]
    assert engine.batch([]) == []


def test_sampling_is_reproducible_with_a_seed(engine: HFEngine, noise: Noise) -> None:
    s = GenerationSettings(temperature=1.0, top_p=0.95, max_new_tokens=20, seed=7)
    r = Request(noise(40, 40), "Tell me a story.", settings=s)
    assert engine.ask(r).text == engine.ask(r).text
    others = {engine.ask(replace(r, settings=s.replace(seed=k))).text for k in range(8, 12)}
    assert len(others) > 1


def test_beam_search_streams_its_answer_in_one_piece(engine: HFEngine, noise: Noise) -> None:
    r = Request(noise(40, 40), "Hi", settings=GenerationSettings(num_beams=2, max_new_tokens=8))
    stream = engine.stream(r)
    pieces = list(stream)
    assert "".join(pieces) == stream.answer.text
    assert 1 <= stream.answer.completion_tokens <= 8
    assert engine.ask(r).text == stream.answer.text


def test_concurrent_callers_get_their_own_answers(engine: HFEngine, noise: Noise) -> None:
    requests = _batch_requests(noise)[:3]
    expected = [engine.ask(r).text for r in requests]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda r: engine.ask(r).text, requests))
    assert got == expected


# ---------------------------------------------------------------- cancellation


def _long(noise: Noise) -> Request:
    return Request(
        noise(48, 48, seed=11),
        "Describe everything.",
        settings=GenerationSettings(max_new_tokens=200),
    )


def test_cancel_stops_a_stream_early(fresh_engine: HFEngine, noise: Noise) -> None:
    request = _long(noise)
    # Precondition: uncancelled, this greedy answer runs to the token limit.
    assert fresh_engine.ask(request).finish_reason == "length"
    fresh_engine.prefix_cache.clear()
    stream = fresh_engine.stream(request)
    first = next(stream)
    stream.cancel()
    rest = list(stream)
    answer = stream.answer
    assert answer.finish_reason == "cancelled"
    assert answer.completion_tokens < 200
    assert first + "".join(rest) == answer.text


def test_cancel_from_another_thread_stops_ask(engine: HFEngine, noise: Noise) -> None:
    token = CancelToken()
    threading.Timer(0.05, token.cancel).start()
    answer = engine.ask(_long(noise), token)
    assert answer.finish_reason == "cancelled" and answer.completion_tokens < 200


def test_an_already_cancelled_request_generates_nothing(engine: HFEngine, noise: Noise) -> None:
    token = CancelToken()
    token.cancel()
    answer = engine.ask(_long(noise), token)
    assert (answer.text, answer.completion_tokens, answer.finish_reason) == ("", 0, "cancelled")
    assert engine.batch([_long(noise)], token)[0].finish_reason == "cancelled"


def test_dropping_a_stream_frees_the_engine(engine: HFEngine, noise: Noise) -> None:
    stream = engine.stream(_long(noise))
    next(stream)
    stream.close()
    done = threading.Event()

    def ask_again() -> None:
        engine.ask(Request(noise(20, 20), "q", settings=GREEDY))
        done.set()

    threading.Thread(target=ask_again, daemon=True).start()
    assert done.wait(30), "the abandoned generation kept the engine's lock"


# ---------------------------------------------------------------- request errors


def test_request_errors(engine: HFEngine, noise: Noise, monkeypatch: pytest.MonkeyPatch) -> None:
    too_long = Request(noise(20, 20), "q", settings=GenerationSettings(max_new_tokens=4000))
    with pytest.raises(InvalidRequest, match="start a new conversation or lower max_new_tokens"):
        engine.ask(too_long)
    monkeypatch.setattr(engine, "max_pixels", 300)
    with pytest.raises(ov.ImageTooLarge, match="over the limit"):
        engine.stream(Request(noise(20, 20), "q"))  # raised at call time, before iterating
    with pytest.raises(InvalidRequest, match="expected a Request"):
        engine.ask("What?")  # type: ignore[arg-type]


def test_a_closed_engine_says_so(tiny_model_dir: Path, noise: Noise) -> None:
    e = HFEngine(str(tiny_model_dir))
    e.close()
    with pytest.raises(ModelError, match="closed"):
        e.ask(Request(noise(20, 20), "q"))


def test_lazy_engine_loads_on_first_use_and_reports_it(tiny_model_dir: Path, noise: Noise) -> None:
    with HFEngine(str(tiny_model_dir), lazy=True) as e:
        assert not e.info().loaded
        first = e.ask(Request(noise(20, 20), "q", settings=GREEDY))
        second = e.ask(Request(noise(20, 20), "q", settings=GREEDY))
        assert first.timings.load_s > 0 and second.timings.load_s == 0.0
        assert e.info().loaded and e.info().load_s == first.timings.load_s


# ---------------------------------------------------------------- detokenizer


def _feed_one_by_one(detok: Detokenizer, ids: list[int]) -> list[str]:
    pieces = [detok.feed([i]) for i in ids]
    pieces.append(detok.finish())
    return [p for p in pieces if p]


def test_detokenizer_never_shows_half_characters(engine: HFEngine) -> None:
    tok = engine.loaded.processor.tokenizer
    text = "  héllo ✓ 日本語 naïve café  \n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    pieces = _feed_one_by_one(Detokenizer(tok), ids)
    assert "".join(pieces) == text.strip()
    assert not any("\ufffd" in p for p in pieces)


def test_detokenizer_cuts_at_stop_strings(engine: HFEngine) -> None:
    tok = engine.loaded.processor.tokenizer
    ids = tok(" A red cup. ###Human: and more", add_special_tokens=False)["input_ids"]
    detok = Detokenizer(tok, ("###",))
    pieces = _feed_one_by_one(detok, ids)
    assert "".join(pieces) == detok.text == "A red cup."
    assert detok.hit_stop_string and not any("#" in p for p in pieces)
