"""What the model server admits: its limits, the pixel budget, and the browser guard.

Every check here runs before a request reaches the batcher, so that one bad or oversized request
gets its own 4xx and never fails, slows or starves the requests batched with it. No Qt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException
from fastapi import Request as HTTPRequest
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from vip_model.errors import InvalidRequest
from vip_model.server_protocol import error_body

#: Host names a token-less (loopback) server answers to, besides the address it is bound to.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class ServerConfig:
    """Limits and batching of a server. ``token`` None means no authentication (loopback only).

    ``max_pixels`` bounds one image; ``max_inflight_pixels`` bounds the decoded pixels of all
    requests in flight together (a request over what is left waits up to ``pixel_wait_s``, then
    gets 503 + Retry-After). Text, prompt and body limits answer 422, 413 or 408.
    """

    model_name: str
    token: str | None = None
    max_batch_size: int = 8
    max_wait_ms: float = 20.0
    max_queue: int = 64
    max_image_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_new_tokens: int = 1024
    max_inflight_pixels: int = 100_000_000
    pixel_wait_s: float = 10.0
    max_question_chars: int = 8_000
    max_conversation_chars: int = 32_000
    max_prompts: int = 64
    max_prompt_points: int = 20_000
    body_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue < 1 or self.max_wait_ms < 0:
            raise InvalidRequest("max_batch_size and max_queue must be ≥ 1, max_wait_ms ≥ 0")
        if self.max_inflight_pixels < self.max_pixels:
            raise InvalidRequest(
                f"max_inflight_pixels ({self.max_inflight_pixels:,}) must be at least max_pixels "
                f"({self.max_pixels:,}), or the largest allowed image could never be answered"
            )

    @property
    def max_body_bytes(self) -> int:
        # base64 grows data by 4/3; leave room for the conversation and prompts.
        return self.max_image_bytes * 4 // 3 + 2 * 1024 * 1024


def public_model_name(name: str) -> str:
    """What the server calls its model in answers: a hub id as is, a local folder by its own
    name only (an open ``/health`` must not tell the world how the server's disk is laid out)."""
    trimmed = name.strip().rstrip("/\\")
    path = Path(trimmed).expanduser()
    looks_like_path = (
        trimmed.startswith((".", "/", "~")) or "\\" in trimmed or trimmed.count("/") > 1
    )
    if looks_like_path or path.exists():
        return path.resolve().name or "model"
    return trimmed or "model"


# ------------------------------------------------------------------------------- the body


async def read_json_body(http: HTTPRequest, config: ServerConfig) -> dict[str, Any]:
    """The request's JSON object: 415 unless it is declared ``application/json`` (a browser
    cannot send that cross-site without asking first), 413 over the size limit, 408 when the
    body does not arrive within ``body_timeout_s``, 400 when it is not a JSON object, 422 when a
    string holds a lone surrogate (text that is not Unicode)."""
    media = http.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise HTTPException(
            415, f"send the body as JSON with 'Content-Type: application/json' (got {media!r})"
        )
    declared = http.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
        raise HTTPException(413, too_big(config))
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(config.body_timeout_s):
            async for chunk in http.stream():
                size += len(chunk)
                if size > config.max_body_bytes:
                    raise HTTPException(413, too_big(config))
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPException(
            408,
            f"the request body did not arrive within {config.body_timeout_s:g} s: send the whole "
            "body at once (its Content-Length must match what is sent)",
        ) from None
    return await asyncio.to_thread(_parse, b"".join(chunks))


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise HTTPException(400, "the body is not valid JSON (nested too deeply)") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    _check_unicode(body, "body")
    return body


def _check_unicode(value: Any, where: str) -> None:
    # JSON's \ud800 escapes decode to lone surrogates, which no tokenizer (or log) can take.
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise HTTPException(
                    422,
                    f"{path} holds a lone surrogate ({item[exc.start]!r} at character "
                    f"{exc.start}), which is not Unicode text: send valid UTF-8",
                ) from None
        elif isinstance(item, dict):
            stack.extend(
                (v, f"{path}.{k}") for k, v in item.items() if isinstance(v, str | list | dict)
            )
            for k in item:
                stack.append((k, f"{path} (a key)"))
        elif isinstance(item, list):
            stack.extend(
                (v, f"{path}[{i}]") for i, v in enumerate(item) if isinstance(v, str | list | dict)
            )


def too_big(config: ServerConfig) -> str:
    return (
        f"request too large: images are limited to {config.max_image_bytes} bytes "
        f"({config.max_image_bytes / 2**20:g} MiB) as a file; downscale or recompress the image"
    )


# ------------------------------------------------------------------------------- text and prompts


def check_conversation(question: Any, history: Iterable[str], config: ServerConfig) -> None:
    """422 when the question or the whole conversation is over the server's text limits.

    Checked on the raw body, before the image is decoded: a 10 MB question costs nothing."""
    if not isinstance(question, str):
        return  # the request's own parsing names the problem
    if len(question) > config.max_question_chars:
        raise HTTPException(
            422,
            f"the question is {len(question):,} characters, over this server's limit of "
            f"{config.max_question_chars:,}: shorten it",
        )
    total = len(question) + sum(len(t) for t in history)
    if total > config.max_conversation_chars:
        raise HTTPException(
            422,
            f"the conversation is {total:,} characters, over this server's limit of "
            f"{config.max_conversation_chars:,}: start a new conversation or drop earlier turns",
        )


def history_texts(history: Any) -> list[str]:
    """The questions and answers of a raw ``history`` list (what is not text is left to the
    request's own parsing)."""
    if not isinstance(history, list):
        return []
    return [
        text
        for turn in history
        if isinstance(turn, dict)
        for text in (turn.get("question"), turn.get("answer"))
        if isinstance(text, str)
    ]


def chat_texts(messages: Any) -> list[str]:
    """The texts of a raw OpenAI ``messages`` list, in order."""
    out: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return out


def check_prompts(prompts: Any, config: ServerConfig) -> None:
    """422 when the raw prompt list has more prompts or points than this server draws: the
    drawing cost grows with them, and it is paid before the batch."""
    if not isinstance(prompts, list):
        return
    if len(prompts) > config.max_prompts:
        raise HTTPException(
            422,
            f"{len(prompts)} visual prompts, over this server's limit of {config.max_prompts}",
        )
    numbers = _count_numbers(prompts)
    if numbers > 2 * config.max_prompt_points:
        raise HTTPException(
            422,
            f"the visual prompts hold about {numbers // 2:,} points, over this server's limit of "
            f"{config.max_prompt_points:,}: simplify the polygons (fewer vertices)",
        )


def _count_numbers(value: Any) -> int:
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, int | float) and not isinstance(item, bool):
            count += 1
    return count


# ------------------------------------------------------------------------------- pixel budget


class PixelBudget:
    """Decoded pixels that all requests in flight may hold together, granted first come, first
    served. Lives on the server's event loop; :meth:`Reservation.release` may be called from any
    thread (the batcher releases a request's pixels when it is done with it)."""

    def __init__(self, capacity: int, wait_s: float) -> None:
        self.capacity = capacity
        self.wait_s = wait_s
        self.used = 0
        self.peak = 0
        self.refused = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, pixels: int) -> Reservation:
        """Reserve ``pixels``; waits while others hold the budget, then 503 + Retry-After."""
        loop = asyncio.get_running_loop()
        if not self._waiters and self.used + pixels <= self.capacity:
            self._take(pixels)
            return Reservation(self, pixels, loop)
        waiter: asyncio.Future[None] = loop.create_future()
        entry = (pixels, waiter)
        self._waiters.append(entry)
        try:
            await asyncio.wait({waiter}, timeout=self.wait_s)
        except asyncio.CancelledError:  # the client left while waiting
            self._withdraw(entry)
            raise
        if waiter.done():
            return Reservation(self, pixels, loop)
        self._withdraw(entry)
        self.refused += 1
        raise HTTPException(
            503,
            f"the server is busy decoding other images ({self.used / 1e6:.0f} of "
            f"{self.capacity / 1e6:.0f} MP in use): retry shortly",
            headers={"Retry-After": "2"},
        )

    def _take(self, pixels: int) -> None:
        self.used += pixels
        self.peak = max(self.peak, self.used)

    def _withdraw(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        pixels, waiter = entry
        if waiter.done():  # granted just as it stopped waiting: give it back
            self._release(pixels)
            return
        waiter.cancel()
        self._waiters.remove(entry)
        self._grant()  # the head may have been the one blocking smaller requests behind it

    def _release(self, pixels: int) -> None:
        self.used -= pixels
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.capacity:
            pixels, waiter = self._waiters.popleft()
            self._take(pixels)
            waiter.set_result(None)


class Reservation:
    """Pixels held for one request; :meth:`release` (idempotent, any thread) gives them back."""

    def __init__(self, budget: PixelBudget, pixels: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pixels = pixels
        self._budget = budget
        self._loop = loop
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        with contextlib.suppress(RuntimeError):  # a closed loop: the server has stopped
            self._loop.call_soon_threadsafe(self._budget._release, self.pixels)


# ------------------------------------------------------------------------------- browser guard


class BrowserGuard:
    """ASGI middleware refusing what only a hostile web page would send (403).

    ``Origin``, when present, must be this server itself (no page of another site may use it;
    the server sends no CORS headers either). Without a token, ``Host`` must also name this
    loopback server (``localhost``, ``127.0.0.1``, ``[::1]`` or the bound address, with its
    port): a DNS-rebinding page reaches 127.0.0.1 under its own name and is refused.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.problem(scope)
            if problem:
                response = JSONResponse(error_body(403, problem), 403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def problem(self, scope: Scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").strip().lower()
        server = scope.get("server")
        if self.token is None and host and server is not None:
            bound, port = server
            bound_name = f"[{bound}]" if ":" in bound else bound
            names = {*LOOPBACK_NAMES, bound_name.lower()}
            allowed = {f"{n}:{port}" for n in names} | (names if port == 80 else set())
            if host not in allowed:
                return (
                    f"Host {host!r} is not this server: a server without a token answers only "
                    f"to localhost:{port} or 127.0.0.1:{port} (start it with --token to serve "
                    "other names)"
                )
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin.strip().lower())
            netloc = parts.netloc
            default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
            if not host or (netloc != host and f"{netloc}{default}" != host):
                return (
                    f"requests from web pages of other sites (Origin {origin!r}) are refused: "
                    "call the server from a program, not from a browser page"
                )
        return None
