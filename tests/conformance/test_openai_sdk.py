"""The `openai` SDK against our real server (127.0.0.1, the tiny model): it behaves like OpenAI.

Fields are honoured or refused with a 4xx naming them, never silently dropped; every error has
OpenAI's shape; streams fail before their first byte when the request cannot be answered.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

import overlays as ov
from vip_model.engine import GenerationSettings, Request
from vip_model.hf import HFEngine
from vip_model.server import ServerConfig, ServerThread, create_app

openai = pytest.importorskip("openai")

BOX = ov.Rectangle((10, 8, 50, 40))
IMAGE_LIMIT = 60_000  # bytes: between the two noise PNGs below


def png(w: int, h: int) -> bytes:
    rng = np.random.default_rng(w)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


SMALL, BIG = png(64, 48), png(160, 140)


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Iterator[HFEngine]:
    with HFEngine(str(tiny_model_dir)) as e:
        yield e


@pytest.fixture(scope="module")
def server(engine: HFEngine, tiny_model_dir: Path) -> Iterator[str]:
    config = ServerConfig(
        model_name=str(tiny_model_dir), max_new_tokens=64, max_image_bytes=IMAGE_LIMIT
    )
    with ServerThread(create_app(engine, config)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Any:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def messages(image: bytes = SMALL, question: str = "What is within the red rectangle?") -> Any:
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": data_url(image)}},
                {"type": "text", "text": question},
            ],
        }
    ]


def ask(client: Any, **kw: Any) -> Any:
    kw.setdefault("messages", messages())
    kw.setdefault("max_tokens", 4)
    extra = {"vip_prompts": [ov.prompt_to_dict(BOX)], **kw.pop("extra_body", {})}
    return client.chat.completions.create(model="tiny", extra_body=extra, **kw)


def refused(client: Any, status: int, param: str | None, **kw: Any) -> Any:
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, **kw)
    error = caught.value
    assert error.status_code == status, error.message
    assert error.param == param and error.type == "invalid_request_error"
    return error


def test_max_tokens_zero_is_refused_not_512(client: Any) -> None:
    # before: 200 and 512 generated tokens
    refused(client, 422, "max_tokens", max_tokens=0)
    refused(client, 422, "max_completion_tokens", max_completion_tokens=-3)
    assert ask(client, max_tokens=3).usage.completion_tokens <= 3


def test_stream_options_must_be_an_object(client: Any) -> None:
    refused(client, 422, "stream_options", extra_body={"stream_options": True})  # before: 500
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1


def test_n_null_is_one_and_more_is_refused(client: Any) -> None:
    assert len(ask(client, n=None).choices) == 1  # before: 422
    assert "one choice" in refused(client, 422, "n", n=2).message


def test_response_format_other_than_text_is_refused(client: Any) -> None:
    error = refused(client, 422, "response_format", response_format={"type": "json_object"})
    assert "plain text" in error.message  # before: ignored, 200
    assert ask(client, response_format={"type": "text"}).choices[0].message.content is not None


def test_system_message_replaces_the_template_system_text(client: Any, engine: HFEngine) -> None:
    system = "You describe marked regions in one word."
    sent = [{"role": "system", "content": system}, *messages()]
    got = ask(client, messages=sent)
    image = Image.open(io.BytesIO(SMALL)).convert("RGB")
    question = "What is within the red rectangle?"
    settings = GenerationSettings(max_new_tokens=4)
    expected = engine.ask(Request(image, question, (BOX,), settings=settings, system=system))
    default = engine.ask(Request(image, question, (BOX,), settings=settings))
    assert got.choices[0].message.content == expected.text
    assert got.usage.prompt_tokens == expected.prompt_tokens != default.prompt_tokens
    text = Request(image, question, (BOX,), system=system).text()
    assert text.startswith(system + " USER: <image>\n")  # before: the default system text


def test_stream_that_cannot_be_answered_fails_with_a_status(client: Any) -> None:
    outside = {"vip_prompts": [{"kind": "rectangle", "box": [500, 500, 600, 600]}]}
    with pytest.raises(openai.UnprocessableEntityError, match="outside"):
        ask(client, stream=True, extra_body=outside)  # before: 200, then an error chunk
    long = messages(question="word " * 1500)  # under the 8,000-character limit
    with pytest.raises(openai.UnprocessableEntityError, match="tokens"):
        ask(client, stream=True, messages=long)


def test_models_by_name_and_404s_in_the_error_shape(client: Any, server: str) -> None:
    assert [m.id for m in client.models.list().data] == ["tiny"]  # before: the folder's path
    assert client.models.retrieve("tiny").id == "tiny"  # before: 404 outside the shape
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found" and caught.value.type == "not_found_error"
    for method, path in (("GET", "/nope"), ("POST", "/v1/models"), ("GET", "/v1/completions")):
        r = httpx.request(method, server + path)
        assert r.status_code in (404, 405)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}, r.text


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"messages": []}',
        b'{"messages": [{"role": "user", "content": "hi"}]}',
        b'{"messages": [{"role": "tool", "content": "x"}]}',
    ],
)
def test_every_error_has_openai_fields(server: str, body: bytes) -> None:
    r = httpx.post(f"{server}/v1/chat/completions", content=body)
    assert 400 <= r.status_code < 500
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"]


def test_image_limit_is_exact_in_bytes(client: Any, server: str) -> None:
    assert len(SMALL) < IMAGE_LIMIT < len(BIG) < IMAGE_LIMIT * 4 // 3  # the body fits
    assert ask(client).choices  # under the limit
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, messages=messages(BIG))  # before: accepted
    assert caught.value.status_code == 413 and f"{IMAGE_LIMIT} bytes" in caught.value.message
    native = {"image": base64.b64encode(BIG).decode(), "question": "What is it?"}
    r = httpx.post(f"{server}/v1/ask", json=native)
    assert r.status_code == 413 and str(len(BIG)) in r.json()["error"]["message"]
