"""The server's typed protocol: /openapi.json documents every body, invalid bodies get the one
error shape naming their field, answers match their models, and one helper cancels the job of a
client that hung up. A real uvicorn on 127.0.0.1, the tiny model."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.requests import Request as HTTPRequest

import overlays as ov
from vip_model.batcher import Job
from vip_model.engine import GenerationSettings, Request
from vip_model.hf import HFEngine
from vip_model.server import ServerConfig, ServerThread, create_app
from vip_model.server_protocol import (
    AskDelta,
    AskDone,
    AskResponse,
    ChatCompletion,
    ChatCompletionChunk,
    ClientGone,
    Health,
    ModelList,
    ModelObject,
    field_path,
)
from vip_model.server_serving import job_events

BOX = ov.Rectangle((5, 5, 30, 30))


@pytest.fixture(scope="module")
def server(engine: HFEngine) -> Iterator[str]:
    config = ServerConfig(model_name="tiny", max_new_tokens=64)
    with ServerThread(create_app(engine, config)) as url:
        yield url


@pytest.fixture(scope="module")
def small() -> Image.Image:
    return Image.new("RGB", (64, 48), (200, 100, 50))


def _native(image: Image.Image, **extra: Any) -> dict[str, Any]:
    settings = GenerationSettings(max_new_tokens=4)
    request = Request(image=image, question="What is it?", prompts=(BOX,), settings=settings)
    return {**request.to_dict(), **extra}


def _chat(image: Image.Image, **extra: Any) -> dict[str, Any]:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {
        "model": "tiny",
        "max_tokens": 4,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": "What is it?"},
                ],
            }
        ],
        "vip_prompts": [ov.prompt_to_dict(BOX)],
        **extra,
    }


# ------------------------------------------------------------------------------- /openapi.json


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    assert name in doc["components"]["schemas"], f"dangling {ref}"
    return doc["components"]["schemas"][name]  # type: ignore[no-any-return]


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)


def test_openapi_documents_every_request_and_response_body(server: str) -> None:
    doc = httpx.get(f"{server}/openapi.json").json()
    paths = doc["paths"]
    expected = {
        ("get", "/health"): (None, "Health"),
        ("get", "/v1/models"): (None, "ModelList"),
        ("get", "/v1/models/{model_id}"): (None, "ModelObject"),
        ("post", "/v1/ask"): ("AskRequest", "AskResponse"),
        ("post", "/v1/chat/completions"): ("ChatRequest", "ChatCompletion"),
    }
    for (method, path), (request, response) in expected.items():
        op = paths[path][method]
        if request is not None:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{request}"}, (path, body)
            assert _resolve(doc, body)["properties"], path
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{response}"}, (path, ok)
        error = op["responses"]["422"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}, path
    # The streams are documented as well: NDJSON/SSE events of /v1/ask, chunks of chat.
    ask_ok = paths["/v1/ask"]["post"]["responses"]["200"]["content"]
    events = {
        r["$ref"].rsplit("/", 1)[1] for r in ask_ok["application/x-ndjson"]["schema"]["oneOf"]
    }
    assert events == {"AskDelta", "AskDone", "AskStreamError"}
    assert ask_ok["text/event-stream"] == ask_ok["application/x-ndjson"]
    chat_ok = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    chunk = chat_ok["text/event-stream"]["schema"]
    assert _resolve(doc, chunk)["properties"]["object"]["const"] == "chat.completion.chunk"
    # The request models say what they take: required fields, the extension fields, limits.
    ask = doc["components"]["schemas"]["AskRequest"]
    assert set(ask["required"]) == {"image", "question"}
    assert ask["additionalProperties"] is False
    chat = doc["components"]["schemas"]["ChatRequest"]
    assert {"vip_prompts", "vip_template", "stream_options"} <= set(chat["properties"])
    # Every prompt kind is documented with its own fields (read from the prompt classes).
    prompts = ask["properties"]["prompts"]["anyOf"][0]["items"]["oneOf"]
    by_kind = {p["properties"]["kind"]["const"]: p for p in prompts}
    assert set(by_kind) == set(ov.PROMPT_TYPES)
    assert by_kind["rectangle"]["required"] == ["kind", "box"]
    assert {"tail", "tip", "bend", "style", "label"} <= set(by_kind["arrow"]["properties"])
    assert chat["properties"]["vip_prompts"]["anyOf"] == ask["properties"]["prompts"]["anyOf"]
    for ref in _refs(doc):  # nothing points at a schema that is not there
        _resolve(doc, {"$ref": ref})


# ------------------------------------------------------------------------------- invalid bodies


@pytest.mark.parametrize(
    ("path", "change", "param"),
    [
        ("/v1/ask", {"image": 5}, "image"),
        ("/v1/ask", {"question": None}, "question"),
        ("/v1/ask", {"settings": {"temperature": "hot"}}, "settings.temperature"),
        ("/v1/ask", {"settings": {"max_new_tokens": True}}, "settings.max_new_tokens"),
        ("/v1/ask", {"history": [{"question": "q"}]}, "history[0].answer"),
        ("/v1/ask", {"prompts": ["rectangle"]}, "prompts[0]"),
        ("/v1/ask", {"stream": "yes"}, "stream"),
        ("/v1/ask", {"format": "xml"}, "format"),
        ("/v1/ask", {"surprise": 1}, "surprise"),
        ("/v1/chat/completions", {"max_tokens": "4"}, "max_tokens"),
        ("/v1/chat/completions", {"temperature": 9}, "temperature"),
        ("/v1/chat/completions", {"messages": [{"role": "tool"}]}, "messages[0].role"),
        ("/v1/chat/completions", {"messages": [{"content": "hi"}]}, "messages[0].role"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 1}]}]},
            "messages[0].content[0].image_url",
        ),
        ("/v1/chat/completions", {"vip_prompts": {"kind": "rectangle"}}, "vip_prompts"),
        ("/v1/chat/completions", {"stream_options": {"include_usage": "yes"}}, "stream_options"),
        ("/v1/chat/completions", {"functions": []}, "functions"),
    ],
)
def test_invalid_bodies_get_the_error_shape_naming_the_field(
    server: str, small: Image.Image, path: str, change: dict[str, Any], param: str
) -> None:
    base = _native(small) if path == "/v1/ask" else _chat(small)
    r = httpx.post(f"{server}{path}", json={**base, **change}, timeout=60)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_value"
    assert error["param"] is not None and error["param"].startswith(param), error
    assert param.split(".")[0].split("[")[0] in error["message"], error


def test_field_paths_are_written_as_openai_writes_params() -> None:
    assert field_path(("messages", 0, "content", "list[ContentPart]", 1, "type")) == (
        "messages[0].content[1].type"
    )
    assert field_path(("settings", "temperature")) == "settings.temperature"
    assert field_path(()) == ""


class _Broken:
    """The tiny engine, but its ``info`` fails as a bug would."""

    def __init__(self, engine: HFEngine) -> None:
        self._engine = engine

    def info(self) -> Any:
        raise RuntimeError("disk on fire")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_an_unforeseen_error_is_a_500_in_the_error_shape(engine: HFEngine) -> None:
    config = ServerConfig(model_name="tiny")
    with ServerThread(create_app(_Broken(engine), config)) as url:  # type: ignore[arg-type]
        r = httpx.get(f"{url}/health")
    assert r.status_code == 500
    assert r.json()["error"] == {
        "message": "internal error: RuntimeError: disk on fire",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }


# ------------------------------------------------------------------------------- answers


def test_answers_and_streams_match_their_models(server: str, small: Image.Image) -> None:
    Health.model_validate(httpx.get(f"{server}/health").json())
    ModelList.model_validate(httpx.get(f"{server}/v1/models").json())
    ModelObject.model_validate(httpx.get(f"{server}/v1/models/tiny").json())
    r = httpx.post(f"{server}/v1/ask", json=_native(small), timeout=60)
    AskResponse.model_validate(r.json())
    body = _native(small, stream=True)
    with httpx.stream("POST", f"{server}/v1/ask", json=body, timeout=60) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    for line in lines[:-1]:
        AskDelta.model_validate(line)
    AskDone.model_validate(lines[-1])
    r = httpx.post(f"{server}/v1/chat/completions", json=_chat(small), timeout=60)
    ChatCompletion.model_validate(r.json())
    body = _chat(small, stream=True, stream_options={"include_usage": True})
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=60) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.strip()]
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(e)) for e in events[:-1]]
    assert chunks[-1].usage is not None and not chunks[-1].choices


# ------------------------------------------------------------------------------- disconnects


def _http(disconnected: bool) -> HTTPRequest:
    """A real ASGI request whose client has (or has not) hung up."""

    async def receive() -> dict[str, Any]:
        if disconnected:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    return HTTPRequest({"type": "http", "method": "POST", "headers": []}, receive)


def _job(small: Image.Image) -> Job:
    request = Request(image=small, question="What is it?")
    return Job(request=request, stream=True, loop=asyncio.get_running_loop())


def test_a_client_that_hangs_up_cancels_its_job(small: Image.Image) -> None:
    async def waiting() -> Job:
        job = _job(small)
        with pytest.raises(ClientGone):  # a non-streaming wait: 499
            async for _ in job_events(_http(disconnected=True), job):
                pass
        return job

    assert asyncio.run(waiting()).cancel.cancelled

    async def streaming() -> tuple[Job, Job]:
        job, done = _job(small), _job(small)
        job.events.put_nowait(("delta", "A"))
        job.events.put_nowait(("delta", "B"))
        events = job_events(_http(disconnected=False), job)
        assert await anext(events) == ("delta", "A")
        await events.aclose()  # the stream's response stopped: its client hung up
        done.events.put_nowait(("answer", None))
        assert [e async for e in job_events(_http(disconnected=False), done)] == [("answer", None)]
        return job, done

    hung_up, answered = asyncio.run(streaming())
    assert hung_up.cancel.cancelled
    assert not answered.cancel.cancelled  # an answered job is left alone
