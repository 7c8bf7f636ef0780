"""The model server: a real uvicorn on 127.0.0.1, real HTTP clients, the tiny model."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

import overlays as ov
from vip_model.client import AuthenticationFailed, RemoteEngine, ServerUnavailable
from vip_model.engine import GenerationSettings, Request
from vip_model.errors import InvalidRequest
from vip_model.hf import HFEngine
from vip_model.server import ServerConfig, ServerThread, check_bind, create_app

TOKEN = "t0ken"
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"
BOX = ov.Rectangle((180, 20, 420, 230))


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return ov.load_image(SAMPLE)


@pytest.fixture(scope="module")
def server(engine: HFEngine) -> Iterator[str]:
    config = ServerConfig(
        model_name="tiny",
        token=TOKEN,
        max_new_tokens=64,
        max_pixels=1_000_000,
        max_image_bytes=2**20,
    )
    with ServerThread(create_app(engine, config)) as url:
        yield url


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as c:
        yield c


def _request(
    image: Image.Image, question: str = "What is within the red rectangle?", **kw: object
) -> Request:
    settings = GenerationSettings(max_new_tokens=12)
    return Request(image=image, question=question, prompts=(BOX,), settings=settings, **kw)  # type: ignore[arg-type]


def _data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_health_is_open_models_need_the_token(server: str) -> None:
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    assert httpx.get(f"{server}/v1/models").status_code == 401
    wrong = httpx.get(f"{server}/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.json()["error"]["message"]
    ok = httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.json()["data"][0]["id"] == "tiny"


def test_native_answer_equals_the_local_engine(
    http: httpx.Client, engine: HFEngine, image: Image.Image
) -> None:
    request = _request(image)
    expected = engine.ask(request)
    got = http.post("/v1/ask", json={**request.to_dict(), "stream": False}).json()["answer"]
    assert got["text"] == expected.text
    assert got["completion_tokens"] == expected.completion_tokens


@pytest.mark.parametrize("fmt", ["ndjson", "sse"])
def test_native_stream_pieces_add_up(http: httpx.Client, image: Image.Image, fmt: str) -> None:
    body = {**_request(image).to_dict(), "stream": True, "format": fmt}
    pieces, final = [], None
    with http.stream("POST", "/v1/ask", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.strip():
                continue
            event = json.loads(line.removeprefix("data: "))
            if "delta" in event:
                pieces.append(event["delta"])
            else:
                final = event["answer"]
    assert final is not None and "".join(pieces) == final["text"]


def test_concurrent_requests_are_batched_and_correct(
    server: str, engine: HFEngine, image: Image.Image
) -> None:
    questions = [f"Question number {i} about the red rectangle?" for i in range(8)]
    requests = [_request(image, q) for q in questions]
    expected = [engine.ask(r).text for r in requests]
    before = httpx.get(f"{server}/health").json()
    with RemoteEngine(server, TOKEN) as remote:
        answers = remote.batch(requests)
    after = httpx.get(f"{server}/health").json()
    assert [a.text for a in answers] == expected
    assert after["answered"] - before["answered"] == 8
    assert after["batches"] - before["batches"] < 8  # grouped, not one generate each


def test_remote_engine_streams_and_answers(
    server: str, image: Image.Image, engine: HFEngine
) -> None:
    request = _request(image)
    with RemoteEngine(server, TOKEN) as remote:
        streamed = remote.stream(request)
        text = "".join(streamed)
        assert text == streamed.answer.text == engine.ask(request).text
        assert remote.info().image_tokens > 0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
    ],
)
def test_bad_json(http: httpx.Client, body: bytes, status: int, words: str) -> None:
    r = http.post("/v1/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and words in r.json()["error"]["message"]


def test_bad_requests_get_clear_errors(http: httpx.Client, image: Image.Image) -> None:
    base = _request(image).to_dict()
    cases = [
        ({**base, "surprise": 1}, 422, "unknown key"),
        ({**base, "question": "   "}, 422, "question"),
        ({**base, "image": "!!!notbase64"}, 422, "base64"),
        ({**base, "image": base64.b64encode(b"not an image").decode()}, 422, "not an image"),
        ({**base, "settings": {"max_new_tokens": 500}}, 422, "over this server's limit"),
        ({**base, "settings": {"temperature": -1}}, 422, "temperature"),
        ({**base, "prompts": [{"kind": "rectangle", "box": [5, 5, 1, 1]}]}, 422, "reversed"),
    ]
    for body, status, words in cases:
        r = http.post("/v1/ask", json=body)
        assert r.status_code == status, (body.keys(), r.text)
        assert words in r.json()["error"]["message"], r.text


def test_image_limits_give_413(http: httpx.Client) -> None:
    big = Image.new("RGB", (1200, 1000), (9, 9, 9))  # 1.2 MP > the 1 MP limit of this server
    r = http.post("/v1/ask", json={**_request(big).to_dict(), "stream": False})
    assert r.status_code == 413 and "MP" in r.json()["error"]["message"]
    huge_body = b'{"image": "' + b"A" * (5 * 2**20) + b'"}'
    r = http.post("/v1/ask", content=huge_body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]["message"]


def test_openai_client_non_stream_and_stream(
    server: str, engine: HFEngine, image: Image.Image
) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=TOKEN)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": _data_url(image)}},
                {"type": "text", "text": "What is within the red rectangle?"},
            ],
        }
    ]
    extra = {"vip_prompts": [ov.prompt_to_dict(BOX)]}
    expected = engine.ask(_request(image))
    done = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=12, extra_body=extra
    )
    assert done.choices[0].message.content == expected.text
    assert done.usage.completion_tokens == expected.completion_tokens
    chunks = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=12, stream=True, extra_body=extra
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected.text


def test_openai_multi_turn_matches_native_history(
    http: httpx.Client, engine: HFEngine, image: Image.Image
) -> None:
    first = _request(image, "What is within the red rectangle?")
    follow = first.follow_up("A cup.", "What colour is it?")
    expected = engine.ask(follow).text
    body = {
        "model": "tiny",
        "max_tokens": 12,
        "vip_prompts": [ov.prompt_to_dict(BOX)],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": _data_url(image)}},
                    {"type": "text", "text": "What is within the red rectangle?"},
                ],
            },
            {"role": "assistant", "content": "A cup."},
            {"role": "user", "content": "What colour is it?"},
        ],
    }
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == expected


def test_openai_refuses_urls_and_missing_images(http: httpx.Client) -> None:
    url_body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "http://example.com/x.png"}}
                ],
            }
        ]
    }
    r = http.post("/v1/chat/completions", json=url_body)
    assert r.status_code == 422 and "fetches no URLs" in r.json()["error"]["message"]
    r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 422 and "no image" in r.json()["error"]["message"]


def test_client_disconnect_cancels_generation(engine: HFEngine, image: Image.Image) -> None:
    config = ServerConfig(model_name="tiny", max_new_tokens=4096)
    with ServerThread(create_app(engine, config)) as url:
        request = Request(
            image=image,
            question="Describe everything in great detail.",
            settings=GenerationSettings(max_new_tokens=800),
        )
        body = {**request.to_dict(), "stream": True}
        with httpx.stream("POST", f"{url}/v1/ask", json=body, timeout=60) as response:
            for line in response.iter_lines():
                if line.strip():
                    break  # one delta arrived: now hang up
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = httpx.get(f"{url}/health").json()
            if health["cancelled"] >= 1 or health["answered"] >= 1:
                break
            time.sleep(0.05)
        assert health["cancelled"] == 1, health


def test_full_queue_answers_503_with_retry_after(engine: HFEngine, image: Image.Image) -> None:
    config = ServerConfig(model_name="tiny", max_queue=1)
    app = create_app(engine, config, autostart=False)
    with ServerThread(app) as url:
        body = {**_request(image).to_dict(), "stream": False}
        waiting: dict[str, int] = {}

        def first() -> None:
            waiting["status"] = httpx.post(f"{url}/v1/ask", json=body, timeout=60).status_code

        t = threading.Thread(target=first)
        t.start()
        deadline = time.monotonic() + 10
        while app.state.batcher.queue.qsize() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = httpx.post(f"{url}/v1/ask", json=body, timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        app.state.batcher.start()  # the queued request is now answered
        t.join(timeout=60)
        assert waiting["status"] == 200


def test_remote_errors_are_named(server: str, image: Image.Image) -> None:
    with (
        RemoteEngine(server, "wrong") as remote,
        pytest.raises(AuthenticationFailed, match="token"),
    ):
        remote.ask(_request(image))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    with (
        RemoteEngine(f"http://127.0.0.1:{free_port}", retries=1, backoff_s=0.01) as down,
        pytest.raises(ServerUnavailable, match="vipstudio serve"),
    ):
        down.ask(_request(image))
    with pytest.raises(InvalidRequest, match="http://"):
        RemoteEngine("localhost:8000")


def test_binding_beyond_loopback_needs_a_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "secret")
    with pytest.raises(InvalidRequest, match="without a token"):
        check_bind("0.0.0.0", None)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "vipstudio"),
            "serve",
            "--host",
            "0.0.0.0",
            "--model",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 1
    assert "without a token" in done.stderr and "Traceback" not in done.stderr
