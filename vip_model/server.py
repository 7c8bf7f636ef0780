"""The model server: one resident engine behind FastAPI, shared by many clients.

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/ask`` (our native request, one JSON
answer or a token stream as NDJSON or SSE) and ``POST /v1/chat/completions`` (OpenAI-compatible,
image as a data URL, visual prompts in the ``vip_prompts`` extension field).

Concurrent requests are grouped into batches by :class:`Batcher` (up to ``max_batch_size``,
waiting at most ``max_wait_ms`` for company) instead of one ``generate`` each. The queue is
bounded: when full the server answers 503 with ``Retry-After``. Images arrive inline only: the
server reads no file and fetches no URL. No Qt.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import overlays
from vip_model.engine import Answer, CancelToken, Engine, Request
from vip_model.errors import InvalidRequest, ModelError, OutOfMemory
from vip_model.openai_compat import (
    check_image_bytes,
    completion_body,
    completion_chunk,
    error_body,
    openai_to_request,
)


@dataclass(frozen=True)
class ServerConfig:
    """Limits and batching of a server. ``token`` None means no authentication (loopback only)."""

    model_name: str
    token: str | None = None
    max_batch_size: int = 8
    max_wait_ms: float = 20.0
    max_queue: int = 64
    max_image_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_new_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue < 1 or self.max_wait_ms < 0:
            raise InvalidRequest("max_batch_size and max_queue must be ≥ 1, max_wait_ms ≥ 0")

    @property
    def max_body_bytes(self) -> int:
        # base64 grows data by 4/3; leave room for the conversation and prompts.
        return self.max_image_bytes * 4 // 3 + 2 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise InvalidRequest(
            f"refusing to listen on {host} without a token: anyone on the network could use "
            "the model. Pass --token (or set VIPSTUDIO_TOKEN), or bind to 127.0.0.1"
        )


# ------------------------------------------------------------------------------- batching


class QueueFull(Exception):
    """The server's queue is full; the client should retry later."""


@dataclass(eq=False)
class Job:
    """One request waiting for the engine, and where its results go."""

    request: Request
    stream: bool
    loop: asyncio.AbstractEventLoop
    cancel: CancelToken = field(default_factory=CancelToken)
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    def emit(self, kind: str, value: Any) -> None:
        """Hand an event ("delta", "answer" or "error") to the waiting handler, thread-safely."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the handler's loop is gone: its client left
            self.cancel.cancel()


class Batcher:
    """A worker thread that drains the queue into batched engine calls."""

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        self.engine = engine
        self.config = config
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=config.max_queue)
        self.batches = 0
        self.answered = 0
        self.cancelled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vip-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def submit(self, job: Job) -> None:
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            jobs = [first]
            deadline = time.monotonic() + self.config.max_wait_ms / 1000
            while len(jobs) < self.config.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    jobs.append(
                        self.queue.get(timeout=max(remaining, 0))
                        if remaining > 0
                        else self.queue.get_nowait()
                    )
                except queue.Empty:
                    break
            self._process([j for j in jobs if not j.cancel.cancelled])

    def _process(self, jobs: list[Job]) -> None:
        plain = [j for j in jobs if not j.stream]
        if plain:
            self.batches += 1
            self._answer_batch(plain)
        for job in (j for j in jobs if j.stream):
            self._answer_stream(job)

    def _answer_batch(self, jobs: list[Job]) -> None:
        group = CancelToken()
        watcher = _GroupCancel(group, [j.cancel for j in jobs])
        watcher.start()
        try:
            answers = self.engine.batch([j.request for j in jobs], cancel=group)
        except (InvalidRequest, overlays.OverlayError) as exc:
            # One bad request must not fail its neighbours: find it by answering them alone.
            if len(jobs) == 1:
                jobs[0].emit("error", exc)
                return
            for job in jobs:
                self._answer_batch([job])
            return
        except Exception as exc:  # out of memory, a broken model: every job shares it
            for job in jobs:
                job.emit("error", exc)
            return
        finally:
            watcher.stop()
        for job, answer in zip(jobs, answers, strict=True):
            self.answered += 1
            job.emit("answer", answer)

    def _answer_stream(self, job: Job) -> None:
        try:
            streamed = self.engine.stream(job.request, cancel=job.cancel)
            with streamed:
                for delta in streamed:
                    job.emit("delta", delta)
                answer = streamed.answer
        except Exception as exc:
            job.emit("error", exc)
            return
        self.answered += 1
        self.cancelled += answer.finish_reason == "cancelled"
        job.emit("answer", answer)


class _GroupCancel:
    """Cancels a batch once every one of its clients has gone."""

    def __init__(self, group: CancelToken, members: list[CancelToken]) -> None:
        self.group = group
        self.members = members
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            if all(m.cancelled for m in self.members):
                self.group.cancel()
                return


# ------------------------------------------------------------------------------- the app


def create_app(engine: Engine, config: ServerConfig, autostart: bool = True) -> FastAPI:
    """The FastAPI application serving ``engine``.

    The batcher starts with the app (``autostart=False`` leaves it to ``app.state.batcher``'s
    ``start()``, so tests can fill the queue deterministically).
    """
    batcher = Batcher(engine, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if autostart:
            batcher.start()
        yield
        batcher.stop()

    app = FastAPI(
        title="ViP Studio model server",
        version="1",
        lifespan=lifespan,
        description="ViP-LLaVA region questions: native /v1/ask and OpenAI-compatible chat.",
    )
    app.state.batcher = batcher
    app.state.config = config

    def authorize(http: HTTPRequest) -> None:
        if config.token is None:
            return
        given = http.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.encode(), config.token.encode()
        ):
            raise HTTPException(
                401,
                "missing or wrong token: send 'Authorization: Bearer <token>' "
                "(the token the server was started with)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    # Every error, unknown routes included, in OpenAI's shape {"error": {message, type, ...}}.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(http: HTTPRequest, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
        if not isinstance(exc, HTTPException):  # routing: no such path or method
            detail = {"message": f"{exc.detail}: {http.method} {http.url.path} (see /docs)"}
        return JSONResponse(
            error_body(exc.status_code, **detail),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        info = engine.info()
        return {
            "status": "ok",
            "model": config.model_name,
            "loaded": info.loaded,
            "queued": batcher.queue.qsize(),
            "answered": batcher.answered,
            "batches": batcher.batches,
            "cancelled": batcher.cancelled,
        }

    def model_object() -> dict[str, Any]:
        return {
            "id": config.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "vip-studio",
            "vip": engine.info().to_dict(),
        }

    @app.get("/v1/models")
    async def models(http: HTTPRequest) -> dict[str, Any]:
        authorize(http)
        return {"object": "list", "data": [model_object()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, http: HTTPRequest) -> dict[str, Any]:
        authorize(http)
        if model_id != config.model_name:
            raise HTTPException(
                404,
                {
                    "message": f"model {model_id!r} not found: this server serves "
                    f"{config.model_name!r}",
                    "param": "model",
                    "code": "model_not_found",
                },
            )
        return model_object()

    @app.post("/v1/ask", response_model=None)
    async def ask(http: HTTPRequest) -> JSONResponse | StreamingResponse:
        authorize(http)
        body = await _json_body(http, config)
        stream = body.pop("stream", False)
        fmt = body.pop("format", "ndjson")
        if fmt not in ("ndjson", "sse"):
            raise HTTPException(422, "format must be 'ndjson' or 'sse'")
        if isinstance(body.get("image"), str):  # the same byte limit as chat's data URLs
            _checked(lambda: check_image_bytes(_b64_size(body["image"]), config.max_image_bytes))
        # Decoding the image is CPU work: off the event loop, so other requests keep arriving.
        request = await asyncio.to_thread(
            _checked, lambda: Request.from_dict(body, max_pixels=config.max_pixels), config
        )
        job = _submit(batcher, request, bool(stream))
        if not stream:
            answer = await _wait_answer(http, job)
            return JSONResponse({"model": config.model_name, "answer": answer.to_dict()})

        async def events() -> AsyncIterator[str]:
            async for kind, value in _job_events(job):
                if kind == "delta":
                    payload: dict[str, Any] = {"delta": value}
                elif kind == "answer":
                    payload = {"done": True, "answer": value.to_dict()}
                else:
                    payload = {"error": _error_message(value)}
                line = json.dumps(payload, ensure_ascii=False)
                yield f"data: {line}\n\n" if fmt == "sse" else line + "\n"

        media = "text/event-stream" if fmt == "sse" else "application/x-ndjson"
        return StreamingResponse(events(), media_type=media)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(http: HTTPRequest) -> JSONResponse | StreamingResponse:
        authorize(http)
        body = await _json_body(http, config)
        parsed = await asyncio.to_thread(
            _checked,
            lambda: openai_to_request(body, config.max_pixels, config.max_image_bytes),
            config,
        )
        job = _submit(batcher, parsed.request, parsed.stream)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not parsed.stream:
            answer = await _wait_answer(http, job)
            return JSONResponse(completion_body(completion_id, created, config.model_name, answer))
        # Errors found while preparing (prompt outside the image, conversation too long) come
        # before the first token: wait for it, so they answer with a status, not a 200 stream.
        head = await _wait_answer(http, job, first=True)

        async def events() -> AsyncIterator[str]:
            first = completion_chunk(
                completion_id, created, config.model_name, {"role": "assistant", "content": ""}
            )
            yield f"data: {json.dumps(first)}\n\n"
            async for kind, value in _job_events(job, head):
                if kind == "delta":
                    chunk = completion_chunk(
                        completion_id, created, config.model_name, {"content": value}
                    )
                elif kind == "answer":
                    chunk = completion_chunk(
                        completion_id, created, config.model_name, {}, finish=_finish(value)
                    )
                    yield f"data: {json.dumps(chunk)}\n\n"
                    if parsed.include_usage:
                        usage = completion_chunk(
                            completion_id, created, config.model_name, None, usage=value
                        )
                        yield f"data: {json.dumps(usage)}\n\n"
                    break
                else:
                    chunk = error_body(_status_of(value), _error_message(value))
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def _finish(answer: Answer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


async def _json_body(http: HTTPRequest, config: ServerConfig) -> dict[str, Any]:
    declared = http.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
        raise HTTPException(413, _too_big(config))
    chunks = []
    size = 0
    async for chunk in http.stream():
        size += len(chunk)
        if size > config.max_body_bytes:
            raise HTTPException(413, _too_big(config))
        chunks.append(chunk)
    try:
        body = await asyncio.to_thread(json.loads, b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"the body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def _too_big(config: ServerConfig) -> str:
    return (
        f"request too large: images are limited to {config.max_image_bytes} bytes "
        f"({config.max_image_bytes / 2**20:g} MiB) as a file; downscale or recompress the image"
    )


def _b64_size(text: str) -> int:
    """The number of bytes base64 ``text`` decodes to (without decoding it)."""
    n = len(text.strip())
    return n * 3 // 4 - text.strip()[-2:].count("=") if n else 0


def _checked(build: Callable[[], Any], config: ServerConfig | None = None) -> Any:
    try:
        built = build()
    except Exception as exc:
        param = getattr(exc, "param", None)
        detail = {"message": _error_message(exc), "param": param} if param else _error_message(exc)
        raise HTTPException(_status_of(exc), detail) from None
    if config is None:
        return built
    request = built if isinstance(built, Request) else built.request
    if request.settings.max_new_tokens > config.max_new_tokens:
        raise HTTPException(
            422,
            f"max_new_tokens {request.settings.max_new_tokens} is over this server's limit of "
            f"{config.max_new_tokens}",
        )
    return built


def _submit(batcher: Batcher, request: Request, stream: bool) -> Job:
    job = Job(request=request, stream=stream, loop=asyncio.get_running_loop())
    try:
        batcher.submit(job)
    except QueueFull:
        raise HTTPException(
            503, "the server is busy (queue full): retry shortly", headers={"Retry-After": "1"}
        ) from None
    return job


async def _wait_answer(http: HTTPRequest, job: Job, first: bool = False) -> Any:
    """The job's answer (``first``: its first event, a delta or the answer); errors raise.

    One pending get, polled: asyncio.wait_for on Python 3.11 can drop an item that arrives
    just as its timeout fires."""
    pending = asyncio.ensure_future(job.events.get())
    while True:
        done, _ = await asyncio.wait({pending}, timeout=0.25)
        if not done:
            if await http.is_disconnected():
                pending.cancel()
                job.cancel.cancel()
                raise HTTPException(499, "client closed the request")
            continue
        kind, value = pending.result()
        if first and kind != "error":
            return kind, value
        if kind == "answer":
            return value
        if kind == "error":
            raise HTTPException(_status_of(value), _error_message(value))
        pending = asyncio.ensure_future(job.events.get())


async def _job_events(
    job: Job, head: tuple[str, Any] | None = None
) -> AsyncIterator[tuple[str, Any]]:
    try:
        if head is not None:  # already taken from the queue
            yield head
            if head[0] in ("answer", "error"):
                return
        while True:
            kind, value = await job.events.get()
            yield kind, value
            if kind in ("answer", "error"):
                return
    finally:
        # Reached early when the client disconnects: stop generating for nobody.
        job.cancel.cancel()


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, overlays.ImageTooLarge):
        return 413
    if isinstance(exc, InvalidRequest | overlays.OverlayError):
        return 422
    if isinstance(exc, OutOfMemory):
        return 503
    return 500


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    if isinstance(exc, ModelError | overlays.OverlayError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


class ServerThread:
    """Run an app with uvicorn in a background thread on ``host`` (port 0: any free port).

    ``with ServerThread(app) as url: ...`` — used by tests, benchmarks and the desktop app.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
