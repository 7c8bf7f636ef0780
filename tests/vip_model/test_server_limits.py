"""What the server admits: isolation of bad requests, the pixel budget, text and prompt limits,
timeouts, the browser guard and the EXIF rule. A real uvicorn on 127.0.0.1, the tiny model."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import overlays as ov
from vip_model.client import RemoteEngine
from vip_model.engine import Answer, CancelToken, GenerationSettings, Request
from vip_model.hf import HFEngine
from vip_model.server import ServerConfig, ServerThread, create_app
from vip_model.server_limits import PixelBudget, public_model_name

BOX = ov.Rectangle((5, 5, 30, 30))
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def small() -> Image.Image:
    return Image.new("RGB", (64, 48), (200, 100, 50))


def _body(image: Image.Image, question: str = "What is within the red rectangle?") -> dict:
    request = Request(
        image=image,
        question=question,
        prompts=(BOX,),
        settings=GenerationSettings(max_new_tokens=4),
    )
    return {**request.to_dict(), "stream": False}


def _post_all(url: str, bodies: Sequence[dict | str]) -> list[httpx.Response]:
    """Post every body at once from its own thread; the responses in order."""
    out: list[Any] = [None] * len(bodies)

    def post(i: int) -> None:
        body = bodies[i]
        content = body if isinstance(body, str) else json.dumps(body)
        out[i] = httpx.post(f"{url}/v1/ask", content=content, headers=JSON, timeout=120)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def open_server(engine: HFEngine) -> Iterator[str]:
    """A token-less loopback server (the one a browser page could reach)."""
    config = ServerConfig(model_name="tiny", max_new_tokens=64, max_wait_ms=200)
    with ServerThread(create_app(engine, config)) as url:
        yield url


# ------------------------------------------------------------------------------- isolation


def test_bad_requests_batched_with_good_ones_fail_alone(
    open_server: str, engine: HFEngine, small: Image.Image
) -> None:
    good = _body(small)
    arrow = {
        **good,
        "prompts": [{"kind": "arrow", "tail": [-1e308, -1e308], "tip": [1e308, 1e308]}],
    }
    surrogate = json.dumps({**good, "question": "x"}).replace('"x"', '"\\ud800 what?"')
    responses = _post_all(open_server, [good, good, arrow, good, surrogate, good])
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 422, 200, 422, 200], [r.text[:200] for r in responses]
    assert "surrogate" in responses[4].json()["error"]["message"]
    expected = engine.ask(Request.from_dict({k: v for k, v in good.items() if k != "stream"}))
    assert all(responses[i].json()["answer"]["text"] == expected.text for i in (0, 1, 3, 5))


class _Flaky:
    """The real engine, except that a batch holding a "POISON" question fails the way an
    unforeseen bug would."""

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine

    def batch(self, requests: Sequence[Request], cancel: CancelToken | None = None) -> list[Answer]:
        if any("POISON" in r.question for r in requests):
            raise RuntimeError("boom")
        return self.engine.batch(requests, cancel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def test_an_unexpected_error_in_a_batch_fails_only_its_culprit(
    engine: HFEngine, small: Image.Image
) -> None:
    config = ServerConfig(model_name="tiny", max_batch_size=8)
    app = create_app(_Flaky(engine), config, autostart=False)  # type: ignore[arg-type]
    with ServerThread(app) as url:
        bodies = [_body(small, f"Question {i}?") for i in range(6)]
        bodies[3] = _body(small, "POISON?")
        results: list[httpx.Response] = []
        poster = threading.Thread(target=lambda: results.extend(_post_all(url, bodies)))
        poster.start()
        _wait_for(lambda: app.state.batcher.queue.qsize() == 6)  # one batch, deterministically
        app.state.batcher.start()
        poster.join(timeout=120)
        assert [r.status_code for r in results] == [200, 200, 200, 500, 200, 200]
        assert "boom" in results[3].json()["error"]["message"]
        health = httpx.get(f"{url}/health").json()
        assert health["answered"] == 5 and health["split_batches"] >= 1


# ------------------------------------------------------------------------------- pixel budget


def _png(w: int, h: int) -> str:
    buf = io.BytesIO()
    Image.new("L", (w, h), 0).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_decoded_pixels_are_budgeted_across_requests(engine: HFEngine) -> None:
    # A budget of one 1-MP image: while one is held, the next waits, then gets 503.
    config = ServerConfig(
        model_name="tiny", max_pixels=1_000_000, max_inflight_pixels=1_000_000, pixel_wait_s=0.5
    )
    app = create_app(engine, config, autostart=False)
    with ServerThread(app) as url:
        body = {**_body(Image.new("RGB", (8, 8))), "image": _png(1000, 1000)}
        first: list[httpx.Response] = []
        t = threading.Thread(target=lambda: first.extend(_post_all(url, [body])))
        t.start()
        _wait_for(lambda: app.state.batcher.queue.qsize() == 1)
        assert httpx.get(f"{url}/health").json()["pixels_in_use"] == 1_000_000
        second = httpx.post(f"{url}/v1/ask", json=body, timeout=60)
        assert second.status_code == 503 and second.headers["retry-after"]
        assert "busy" in second.json()["error"]["message"]
        assert app.state.batcher.queue.qsize() == 1  # never decoded, never queued
        app.state.batcher.start()
        t.join(timeout=60)
        assert first[0].status_code == 200
        _wait_for(lambda: httpx.get(f"{url}/health").json()["pixels_in_use"] == 0)


def test_a_request_waits_for_the_budget_then_is_answered(engine: HFEngine) -> None:
    config = ServerConfig(
        model_name="tiny", max_pixels=1_000_000, max_inflight_pixels=1_500_000, pixel_wait_s=30
    )
    app = create_app(engine, config, autostart=False)
    with ServerThread(app) as url:
        body = {**_body(Image.new("RGB", (8, 8))), "image": _png(1000, 1000)}
        results: list[httpx.Response] = []
        t = threading.Thread(target=lambda: results.extend(_post_all(url, [body, body, body])))
        t.start()
        _wait_for(lambda: app.state.batcher.queue.qsize() == 1)
        time.sleep(0.3)
        assert app.state.batcher.queue.qsize() == 1  # the others wait for pixels, undecoded
        app.state.batcher.start()
        t.join(timeout=120)
        assert [r.status_code for r in results] == [200, 200, 200]
        assert httpx.get(f"{url}/health").json()["pixels_peak"] <= 1_500_000


def test_pixel_budget_is_first_come_first_served() -> None:
    async def scenario() -> list[str]:
        budget = PixelBudget(10, wait_s=0.3)
        held = await budget.acquire(6)
        order: list[str] = []

        async def want(name: str, pixels: int) -> None:
            try:
                got = await budget.acquire(pixels)
            except Exception:
                order.append(f"{name} refused")
                return
            order.append(name)
            got.release()

        big = asyncio.create_task(want("big", 6))
        await asyncio.sleep(0.01)
        small = asyncio.create_task(want("small", 2))  # would fit, but waits behind "big"
        await asyncio.sleep(0.05)
        assert order == []
        await big  # times out; "small" is then served at once
        await small
        held.release()
        await asyncio.sleep(0.01)
        assert budget.used == 0
        return order

    assert asyncio.run(scenario()) == ["big refused", "small"]


# ------------------------------------------------------------------------------- text and prompts


def test_long_questions_and_histories_are_refused_early(
    open_server: str, small: Image.Image
) -> None:
    body = _body(small, "Why? " * 20_000)  # 100,000 characters
    t0 = time.perf_counter()
    r = httpx.post(f"{open_server}/v1/ask", json=body, timeout=60)
    assert r.status_code == 422 and "question is 100,000 characters" in r.json()["error"]["message"]
    assert time.perf_counter() - t0 < 5
    history = [{"question": "q" * 4000, "answer": "a" * 4000}] * 5
    r = httpx.post(f"{open_server}/v1/ask", json={**_body(small), "history": history}, timeout=60)
    assert r.status_code == 422 and "conversation is" in r.json()["error"]["message"]
    chat = {"messages": [{"role": "user", "content": "Why? " * 2000}]}
    r = httpx.post(f"{open_server}/v1/chat/completions", json=chat, timeout=60)
    assert r.status_code == 422 and "characters" in r.json()["error"]["message"]


def test_prompt_count_and_points_are_limited(open_server: str, small: Image.Image) -> None:
    many = {**_body(small), "prompts": [ov.prompt_to_dict(BOX)] * 65}
    r = httpx.post(f"{open_server}/v1/ask", json=many, timeout=60)
    assert r.status_code == 422 and "65 visual prompts" in r.json()["error"]["message"]
    ring = [[10 + (i % 7), 10 + (i % 5)] for i in range(25_000)]
    spiky = {**_body(small), "prompts": [{"kind": "contour", "polygons": [ring]}]}
    r = httpx.post(f"{open_server}/v1/ask", json=spiky, timeout=60)
    assert r.status_code == 422 and "points" in r.json()["error"]["message"]


# ------------------------------------------------------------------------------- transport


def test_a_slow_body_gets_408(engine: HFEngine) -> None:
    config = ServerConfig(model_name="tiny", body_timeout_s=0.5)
    with ServerThread(create_app(engine, config)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
            )
            received = b""
            while b"did not arrive" not in received:  # the head and the body may come apart
                chunk = s.recv(4096)
                if not chunk:
                    break
                received += chunk
        reply = received.decode()
        assert reply.startswith("HTTP/1.1 408") and "did not arrive" in reply


def test_health_names_the_model_without_its_path(engine: HFEngine, tiny_model_dir: Path) -> None:
    config = ServerConfig(model_name=str(tiny_model_dir))
    with ServerThread(create_app(engine, config)) as url:
        assert httpx.get(f"{url}/health").json()["model"] == tiny_model_dir.name
        assert httpx.get(f"{url}/v1/models").json()["data"][0]["id"] == tiny_model_dir.name
    assert public_model_name("llava-hf/vip-llava-7b-hf") == "llava-hf/vip-llava-7b-hf"
    assert public_model_name("/srv/models/vip-7b/") == "vip-7b"


def test_browser_pages_cannot_use_a_token_less_server(open_server: str, small: Image.Image) -> None:
    body = json.dumps(_body(small))
    port = open_server.rsplit(":", 1)[1]
    # A cross-site form or fetch may send text/plain without asking first: refused.
    r = httpx.post(f"{open_server}/v1/ask", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    # A DNS-rebinding page reaches 127.0.0.1 under its own name.
    r = httpx.post(
        f"{open_server}/v1/ask", content=body, headers={**JSON, "host": f"evil.example:{port}"}
    )
    assert r.status_code == 403 and "Host" in r.json()["error"]["message"]
    r = httpx.get(f"{open_server}/health", headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "Origin" in r.json()["error"]["message"]
    same = {**JSON, "origin": f"http://localhost:{port}", "host": f"localhost:{port}"}
    assert httpx.post(f"{open_server}/v1/ask", content=body, headers=same).status_code == 200


def test_our_client_and_the_openai_sdk_pass_the_guard(
    open_server: str, engine: HFEngine, small: Image.Image
) -> None:
    request = Request(image=small, question="What?", settings=GenerationSettings(max_new_tokens=4))
    expected = engine.ask(request).text
    for url in (open_server, open_server.replace("127.0.0.1", "localhost")):
        with RemoteEngine(url) as remote:
            assert remote.ask(request).text == expected
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{open_server}/v1", api_key="unused")
    buf = io.BytesIO()
    small.save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    done = client.chat.completions.create(
        model="tiny",
        max_tokens=4,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": "What?"},
                ],
            }
        ],
    )
    assert done.choices[0].message.content == expected


# ------------------------------------------------------------------------------- EXIF


def _sideways_jpeg() -> bytes:
    """A 40×20 JPEG whose EXIF says "rotate 90° clockwise": a person sees it 20×40."""
    image = Image.new("RGB", (40, 20), (250, 250, 250))
    image.paste((20, 20, 220), (0, 0, 10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    return buf.getvalue()


def test_uploads_are_decoded_with_the_clis_exif_rule(tmp_path: Path) -> None:
    from vip_model.engine import decode_image

    path = tmp_path / "sideways.jpg"
    path.write_bytes(_sideways_jpeg())
    cli = ov.load_image(path)
    upload = decode_image(base64.b64encode(path.read_bytes()).decode())
    assert cli.size == upload.size == (20, 40)
    assert cli.tobytes() == upload.tobytes()


def test_server_answers_about_the_upright_image(
    open_server: str, engine: HFEngine, tmp_path: Path
) -> None:
    path = tmp_path / "sideways.jpg"
    path.write_bytes(_sideways_jpeg())
    box = ov.Rectangle((2, 25, 18, 38))  # on the upright 20×40 image; off the stored 40×20 one
    settings = GenerationSettings(max_new_tokens=4)
    expected = engine.ask(
        Request(image=ov.load_image(path), question="What?", prompts=(box,), settings=settings)
    )
    body = {
        "image": base64.b64encode(path.read_bytes()).decode(),
        "question": "What?",
        "prompts": [ov.prompt_to_dict(box)],
        "settings": settings.to_dict(),
    }
    r = httpx.post(f"{open_server}/v1/ask", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["answer"]["text"] == expected.text
