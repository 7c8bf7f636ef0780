"""The model server's serving logic, beside its thin routes (:mod:`vip_model.server`).

:class:`Serving` admits a request (pixel budget, decoding and every check in a worker thread,
prompts drawn), submits it to the :class:`Batcher`, and waits for or streams its answer.
:func:`job_events` is the one place that watches the client: when it hangs up, the job is
cancelled, streaming or not. No Qt.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from fastapi import HTTPException
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, StreamingResponse

import overlays
from overlays import image_io
from vip_model.batcher import Batcher, Job, QueueFull
from vip_model.engine import Answer, Engine, Request
from vip_model.openai_compat import (
    ParsedChat,
    check_image_bytes,
    completion_body,
    completion_chunk,
    openai_to_request,
)
from vip_model.server_limits import (
    PixelBudget,
    Reservation,
    ServerConfig,
    chat_texts,
    check_conversation,
    check_prompts,
    history_texts,
    public_model_name,
)
from vip_model.server_protocol import (
    AskRequest,
    ChatRequest,
    ClientGone,
    Health,
    ModelList,
    ModelObject,
    error_body,
    error_message,
    status_of,
    validated,
)

#: How often a request waiting for its answer checks that its client is still there.
DISCONNECT_POLL_S = 0.25

Event = tuple[str, Any]  # ("delta", str) | ("answer", Answer) | ("error", Exception)


class Serving:
    """One engine served: admission, the batcher, answers and streams."""

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        self.engine = engine
        self.config = config
        self.batcher = Batcher(engine, config)
        self.budget = PixelBudget(config.max_inflight_pixels, config.pixel_wait_s)
        self.name = public_model_name(config.model_name)

    # --------------------------------------------------------------------------- models, health

    def health(self) -> Health:
        batcher, budget = self.batcher, self.budget
        return Health(
            status="ok",
            model=self.name,
            loaded=self.engine.info().loaded,
            queued=batcher.queue.qsize(),
            answered=batcher.answered,
            batches=batcher.batches,
            cancelled=batcher.cancelled,
            split_batches=batcher.splits,
            pixels_in_use=budget.used,
            pixels_peak=budget.peak,
            pixels_refused=budget.refused,
        )

    def model(self, model_id: str | None = None) -> ModelObject:
        """This server's model (404 when ``model_id`` names another)."""
        if model_id is not None and model_id != self.name:
            raise HTTPException(
                404,
                {
                    "message": f"model {model_id!r} not found: this server serves {self.name!r}",
                    "param": "model",
                    "code": "model_not_found",
                },
            )
        info = self.engine.info().to_dict()
        return ModelObject(id=self.name, object="model", created=0, owned_by="vip-studio", vip=info)

    def models(self) -> ModelList:
        return ModelList(object="list", data=[self.model()])

    # --------------------------------------------------------------------------- /v1/ask

    async def ask(
        self, http: HTTPRequest, body: dict[str, Any]
    ) -> JSONResponse | StreamingResponse:
        """A native request (its raw JSON body): one answer, or its tokens as NDJSON or SSE."""
        config = self.config
        # The text and prompt limits first: they cost nothing and bound what follows.
        check_conversation(body.get("question"), history_texts(body.get("history")), config)
        check_prompts(body.get("prompts"), config)
        typed = validated(AskRequest, body)
        body = {k: v for k, v in body.items() if k not in ("stream", "format")}
        encoded = await asyncio.to_thread(_image_bytes, body["image"])
        if encoded is not None:
            # The same byte limit as chat's data URLs (the file, not its base64 text).
            _checked(lambda: check_image_bytes(len(encoded), config.max_image_bytes))
            body["image"] = encoded  # decoded from base64 once
        job, _ = await self._admit(
            lambda: ParsedChat(
                Request.from_dict(body, max_pixels=config.max_pixels), typed.stream, False
            ),
            encoded,
        )
        if not typed.stream:
            answer = await answer_of(http, job)
            return JSONResponse({"model": self.name, "answer": answer.to_dict()})
        sse = typed.format == "sse"

        async def lines() -> AsyncGenerator[str]:
            async with aclosing(job_events(http, job)) as events:
                async for kind, value in events:
                    if kind == "delta":
                        payload: dict[str, Any] = {"delta": value}
                    elif kind == "answer":
                        payload = {"done": True, "answer": value.to_dict()}
                    else:
                        payload = {"error": error_message(value)}
                    line = json.dumps(payload, ensure_ascii=False)
                    yield f"data: {line}\n\n" if sse else line + "\n"

        media = "text/event-stream" if sse else "application/x-ndjson"
        return StreamingResponse(_until_gone(lines()), media_type=media)

    # --------------------------------------------------------------------------- OpenAI chat

    async def chat(
        self, http: HTTPRequest, body: dict[str, Any]
    ) -> JSONResponse | StreamingResponse:
        """An OpenAI chat-completions request: a completion, or its chunks as SSE."""
        config = self.config
        texts = chat_texts(body.get("messages"))
        check_conversation(texts[-1] if texts else "", texts[:-1], config)
        check_prompts(body.get("vip_prompts"), config)
        validated(ChatRequest, body)
        encoded = await asyncio.to_thread(_chat_image_bytes, body.get("messages"))
        job, parsed = await self._admit(
            lambda: openai_to_request(body, config.max_pixels, config.max_image_bytes), encoded
        )
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        name = self.name
        if not parsed.stream:
            answer = await answer_of(http, job)
            return JSONResponse(completion_body(completion_id, created, name, answer))
        # Errors found while generating starts (a conversation too long for the model) come
        # before the first token: wait for it, so they answer with a status, not a 200 stream.
        events = job_events(http, job)
        head = await anext(events)
        if head[0] == "error":
            await events.aclose()
            raise HTTPException(status_of(head[1]), error_message(head[1]))

        def data(chunk: dict[str, Any]) -> str:
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

        async def chunks() -> AsyncGenerator[str]:
            async with aclosing(events):
                yield data(
                    completion_chunk(
                        completion_id, created, name, {"role": "assistant", "content": ""}
                    )
                )
                async for kind, value in _prepend(head, events):
                    if kind == "delta":
                        yield data(
                            completion_chunk(completion_id, created, name, {"content": value})
                        )
                    elif kind == "answer":
                        finish = "length" if value.finish_reason == "length" else "stop"
                        yield data(completion_chunk(completion_id, created, name, {}, finish))
                        if parsed.include_usage:
                            yield data(
                                completion_chunk(completion_id, created, name, None, usage=value)
                            )
                    else:
                        yield data(error_body(status_of(value), error_message(value)))
                yield "data: [DONE]\n\n"

        return StreamingResponse(_until_gone(chunks()), media_type="text/event-stream")

    # --------------------------------------------------------------------------- admission

    async def _admit(
        self, build: Callable[[], ParsedChat], encoded: bytes | None
    ) -> tuple[Job, ParsedChat]:
        """Reserve the image's pixels, then decode and check everything in a worker thread, so
        that only a request known to be good (its prompts already drawn) reaches a batch."""
        pixels = await asyncio.to_thread(_pixels_of, encoded, self.config)
        # No pixels: no image to decode (its parsing is about to say so), nothing to wait for.
        reservation = await self.budget.acquire(pixels) if pixels else None
        try:
            parsed = await asyncio.to_thread(_prepared, build, self.config)
            return self._submit(parsed.request, parsed.stream, reservation), parsed
        except BaseException:
            if reservation is not None:
                reservation.release()
            raise

    def _submit(self, request: Request, stream: bool, reservation: Reservation | None) -> Job:
        job = Job(
            request=request, stream=stream, loop=asyncio.get_running_loop(), reservation=reservation
        )
        try:
            self.batcher.submit(job)
        except QueueFull:
            raise HTTPException(
                503, "the server is busy (queue full): retry shortly", headers={"Retry-After": "1"}
            ) from None
        return job


# ------------------------------------------------------------------------------- the client


async def job_events(http: HTTPRequest, job: Job) -> AsyncGenerator[Event]:
    """The job's events, up to its answer or error: the one place that watches the client.

    While no event comes, the connection is polled; when the client has gone (or whoever reads
    this stops early: a stream's response is cancelled when its client hangs up), the job is
    cancelled so that nobody's tokens are generated for nobody, and :class:`ClientGone` (499)
    is raised. One pending get, polled: asyncio.wait_for on Python 3.11 can drop an item that
    arrives just as its timeout fires."""
    finished = False
    pending: asyncio.Future[Event] | None = None
    try:
        while not finished:
            pending = asyncio.ensure_future(job.events.get())
            while not (await asyncio.wait({pending}, timeout=DISCONNECT_POLL_S))[0]:
                if await http.is_disconnected():
                    raise ClientGone
            kind, value = pending.result()
            pending = None
            finished = kind in ("answer", "error")
            yield kind, value
    finally:
        if pending is not None:
            pending.cancel()
        if not finished:
            job.cancel.cancel()


async def answer_of(http: HTTPRequest, job: Job) -> Answer:
    """The job's answer; its error as an HTTP error; 499 when the client leaves first."""
    async with aclosing(job_events(http, job)) as events:
        async for kind, value in events:
            if kind == "answer":
                return value
            if kind == "error":
                raise HTTPException(status_of(value), error_message(value))
    raise RuntimeError("a job ended without an answer or an error")  # pragma: no cover


async def _prepend(head: Event, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    yield head
    if head[0] in ("answer", "error"):
        return
    async for event in rest:
        yield event


async def _until_gone(stream: AsyncGenerator[str]) -> AsyncIterator[str]:
    """``stream``, ended quietly when its client has gone (the status was sent long ago)."""
    async with aclosing(stream):
        try:
            async for piece in stream:
                yield piece
        except ClientGone:
            return


# ------------------------------------------------------------------------------- preparation


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
    parsed: ParsedChat = _checked(build)
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
        detail = {"message": error_message(exc), "param": param} if param else error_message(exc)
        raise HTTPException(status_of(exc), detail) from None


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
