"""The model server: one resident engine behind FastAPI, shared by many clients.

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/ask`` (our native request, one JSON
answer or a token stream as NDJSON or SSE) and ``POST /v1/chat/completions`` (OpenAI-compatible,
image as a data URL, visual prompts in the ``vip_prompts`` extension field).

Concurrent requests are grouped into batches by :class:`Batcher` (up to ``max_batch_size``,
waiting at most ``max_wait_ms`` for company) instead of one ``generate`` each. The queue is
bounded: when full the server answers 503 with ``Retry-After``. Images arrive inline only: the
server reads no file and fetches no URL. Before a request joins the queue it is read, decoded
and checked whole (:mod:`vip_model.server_limits`: body, text, prompt and pixel limits, the
browser guard), and its prompts are drawn, so that a bad request fails alone. No Qt.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import overlays
from overlays import image_io
from vip_model.batcher import Batcher, Job, QueueFull
from vip_model.engine import Answer, Engine, Request
from vip_model.errors import InvalidRequest, ModelError, OutOfMemory
from vip_model.openai_compat import (
    ParsedChat,
    check_image_bytes,
    completion_body,
    completion_chunk,
    error_body,
    openai_to_request,
)
from vip_model.server_limits import (
    BrowserGuard,
    PixelBudget,
    Reservation,
    ServerConfig,
    chat_texts,
    check_conversation,
    check_prompts,
    history_texts,
    public_model_name,
    read_json_body,
)


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


# ------------------------------------------------------------------------------- the app


def create_app(engine: Engine, config: ServerConfig, autostart: bool = True) -> FastAPI:
    """The FastAPI application serving ``engine``.

    The batcher starts with the app (``autostart=False`` leaves it to ``app.state.batcher``'s
    ``start()``, so tests can fill the queue deterministically).
    """
    batcher = Batcher(engine, config)
    budget = PixelBudget(config.max_inflight_pixels, config.pixel_wait_s)
    name = public_model_name(config.model_name)

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
    app.state.budget = budget
    app.state.config = config
    app.add_middleware(BrowserGuard, token=config.token)

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

    async def _admit(
        build: Callable[[], ParsedChat], encoded: bytes | None
    ) -> tuple[Job, ParsedChat]:
        """Reserve the image's pixels, then decode and check everything in a worker thread, so
        that only a request known to be good (its prompts already drawn) reaches a batch."""
        pixels = await asyncio.to_thread(_pixels_of, encoded, config)
        # No pixels: no image to decode (its parsing is about to say so), nothing to wait for.
        reservation = await budget.acquire(pixels) if pixels else None
        try:
            parsed = await asyncio.to_thread(_prepared, build, config)
            return _submit(batcher, parsed.request, parsed.stream, reservation), parsed
        except BaseException:
            if reservation is not None:
                reservation.release()
            raise

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
            "model": name,
            "loaded": info.loaded,
            "queued": batcher.queue.qsize(),
            "answered": batcher.answered,
            "batches": batcher.batches,
            "cancelled": batcher.cancelled,
            "split_batches": batcher.splits,
            "pixels_in_use": budget.used,
            "pixels_peak": budget.peak,
            "pixels_refused": budget.refused,
        }

    def model_object() -> dict[str, Any]:
        return {
            "id": name,
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
        if model_id != name:
            raise HTTPException(
                404,
                {
                    "message": f"model {model_id!r} not found: this server serves {name!r}",
                    "param": "model",
                    "code": "model_not_found",
                },
            )
        return model_object()

    @app.post("/v1/ask", response_model=None)
    async def ask(http: HTTPRequest) -> JSONResponse | StreamingResponse:
        authorize(http)
        body = await read_json_body(http, config)
        stream = body.pop("stream", False)
        fmt = body.pop("format", "ndjson")
        if fmt not in ("ndjson", "sse"):
            raise HTTPException(422, "format must be 'ndjson' or 'sse'")
        check_conversation(body.get("question"), history_texts(body.get("history")), config)
        check_prompts(body.get("prompts"), config)
        encoded = await asyncio.to_thread(_image_bytes, body.get("image"))
        if encoded is not None:
            # The same byte limit as chat's data URLs (the file, not its base64 text).
            _checked(lambda: check_image_bytes(len(encoded), config.max_image_bytes))
            body["image"] = encoded  # decoded from base64 once
        job, _ = await _admit(
            lambda: ParsedChat(
                Request.from_dict(body, max_pixels=config.max_pixels), bool(stream), False
            ),
            encoded,
        )
        if not stream:
            answer = await _wait_answer(http, job)
            return JSONResponse({"model": name, "answer": answer.to_dict()})

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
        body = await read_json_body(http, config)
        texts = chat_texts(body.get("messages"))
        check_conversation(texts[-1] if texts else "", texts[:-1], config)
        check_prompts(body.get("vip_prompts"), config)
        encoded = await asyncio.to_thread(_chat_image_bytes, body.get("messages"))
        job, parsed = await _admit(
            lambda: openai_to_request(body, config.max_pixels, config.max_image_bytes), encoded
        )
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not parsed.stream:
            answer = await _wait_answer(http, job)
            return JSONResponse(completion_body(completion_id, created, name, answer))
        # Errors found while generating starts (a conversation too long for the model) come
        # before the first token: wait for it, so they answer with a status, not a 200 stream.
        head = await _wait_answer(http, job, first=True)

        async def events() -> AsyncIterator[str]:
            first = completion_chunk(
                completion_id, created, name, {"role": "assistant", "content": ""}
            )
            yield f"data: {json.dumps(first)}\n\n"
            async for kind, value in _job_events(job, head):
                if kind == "delta":
                    chunk = completion_chunk(completion_id, created, name, {"content": value})
                elif kind == "answer":
                    chunk = completion_chunk(
                        completion_id, created, name, {}, finish=_finish(value)
                    )
                    yield f"data: {json.dumps(chunk)}\n\n"
                    if parsed.include_usage:
                        usage = completion_chunk(completion_id, created, name, None, usage=value)
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


def _image_bytes(image: Any) -> bytes | None:
    """The encoded image of a native request (base64 text); None leaves the problem to the
    request's own parsing, which names it."""
    if not isinstance(image, str):
        return None
    try:
        return base64.b64decode(image, validate=True)
    except ValueError:
        return None


def _chat_image_bytes(messages: Any) -> bytes | None:
    """The encoded image of an OpenAI body's first ``data:`` image URL (None: no such image;
    the request's own parsing says what is wrong)."""
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            url = part.get("image_url") if isinstance(part, dict) else None
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str) and url.startswith("data:"):
                return _image_bytes(url.partition(",")[2])
    return None


def _pixels_of(encoded: bytes | None, config: ServerConfig) -> int:
    """The pixels decoding ``encoded`` will hold, read from its header only (413 over the
    server's limit; 0 for what is no image: its parsing fails before any decoding)."""
    if encoded is None:
        return 0
    try:
        w, h = image_io.encoded_size(encoded)
    except overlays.ImageError:
        return 0
    if w * h > config.max_pixels:
        raise HTTPException(
            413,
            f"the image is {w}×{h} = {w * h / 1e6:.1f} MP, over the limit of "
            f"{config.max_pixels / 1e6:g} MP: downscale it",
        )
    return w * h


def _prepared(build: Callable[[], ParsedChat], config: ServerConfig) -> ParsedChat:
    """The parsed request, checked against the server's limits, its prompts drawn: whatever
    about it can fail, fails here (its own 4xx) and not in a batch with others."""
    parsed = _checked(build)
    request = parsed.request
    if request.settings.max_new_tokens > config.max_new_tokens:
        raise HTTPException(
            422,
            f"max_new_tokens {request.settings.max_new_tokens} is over this server's limit of "
            f"{config.max_new_tokens}",
        )
    check_conversation(
        request.question, [text for t in request.history for text in (t.question, t.answer)], config
    )
    return replace(parsed, request=_drawn(request))


def _checked(build: Callable[[], Any]) -> Any:
    """``build()``, its errors as HTTP errors (with OpenAI's ``param`` when the error names one)."""
    try:
        return build()
    except Exception as exc:
        param = getattr(exc, "param", None)
        detail = {"message": _error_message(exc), "param": param} if param else _error_message(exc)
        raise HTTPException(_status_of(exc), detail) from None


def _drawn(request: Request) -> Request:
    """``request`` with its prompts drawn into its image (in place: the server decoded it, and
    nobody else holds it): what the engine draws itself, done before batching. The engine draws
    no prompts on it again, so the model sees the same pixels."""
    if not request.prompts:
        return request
    w, h = request.image.size
    try:
        image = overlays.render(request.image, request.prompts, inplace=True)
    except overlays.OverlayError as exc:
        raise HTTPException(422, str(exc)) from None
    except MemoryError:
        raise HTTPException(503, "out of memory drawing the visual prompts") from None
    except Exception as exc:  # a prompt overlays cannot draw (e.g. coordinates near 1e308)
        raise HTTPException(
            422,
            f"the visual prompts cannot be drawn on this {w}×{h} image "
            f"({type(exc).__name__}: {exc}): use coordinates within the image",
        ) from None
    return replace(request, image=image, prompts=())


def _submit(
    batcher: Batcher, request: Request, stream: bool, reservation: Reservation | None
) -> Job:
    job = Job(
        request=request, stream=stream, loop=asyncio.get_running_loop(), reservation=reservation
    )
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


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """uvicorn's own limits for a server of ``config``: connections beyond what the queue and
    the batches can use get 503 at once (each may hold a body of ``max_body_bytes``), and an idle
    kept-alive connection is closed after 5 s. Slow bodies are cut by ``body_timeout_s`` (408)."""
    return {
        "limit_concurrency": config.max_queue + 2 * config.max_batch_size + 16,
        "timeout_keep_alive": 5,
    }


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
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", **uvicorn_options(app.state.config)
        )
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
