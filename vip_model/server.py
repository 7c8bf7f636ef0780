"""The model server's routes: one resident engine behind FastAPI, shared by many clients.

Endpoints: ``GET /health``, ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/ask`` (our
native request, one JSON answer or a token stream as NDJSON or SSE) and
``POST /v1/chat/completions`` (OpenAI-compatible, image as a data URL, visual prompts in the
``vip_prompts`` extension field). ``/openapi.json`` documents every body.

The routes are thin: they authorize, read the body and hand it to :class:`Serving`
(:mod:`vip_model.server_serving`: admission, batching by :class:`Batcher`, answers, streams,
disconnects); bodies and the one error shape are typed in :mod:`vip_model.server_protocol`;
limits, the pixel budget and the browser guard are in :mod:`vip_model.server_limits`. Images
arrive inline only: the server reads no file and fetches no URL. No Qt.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pydantic
from fastapi import FastAPI, HTTPException
from fastapi import Request as HTTPRequest
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from vip_model.engine import Engine
from vip_model.errors import InvalidRequest
from vip_model.server_limits import BrowserGuard, ServerConfig, read_json_body
from vip_model.server_protocol import (
    AskDelta,
    AskDone,
    AskRequest,
    AskResponse,
    AskStreamError,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    ErrorResponse,
    Health,
    ModelList,
    ModelObject,
    error_body,
    error_message,
    field_path,
)
from vip_model.server_serving import Serving

__all__ = ["ServerConfig", "ServerThread", "check_bind", "create_app", "uvicorn_options"]


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
    serving = Serving(engine, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if autostart:
            serving.batcher.start()
        yield
        serving.batcher.stop()

    app = FastAPI(
        title="ViP Studio model server",
        version="1",
        lifespan=lifespan,
        description="ViP-LLaVA region questions: native /v1/ask and OpenAI-compatible chat.",
    )
    app.state.serving = serving
    app.state.batcher = serving.batcher
    app.state.budget = serving.budget
    app.state.config = config
    app.add_middleware(BrowserGuard, token=config.token)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_components(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

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

    @app.exception_handler(Exception)
    async def internal_error(http: HTTPRequest, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(500, error_message(exc)), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(http: HTTPRequest, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = field_path(tuple(first["loc"]))
        body = error_body(422, f"{param or 'request'}: {first['msg']}", param or None)
        return JSONResponse(body, status_code=422)

    @app.get("/health", responses=ERROR_RESPONSES)
    async def health() -> Health:
        return serving.health()

    @app.get("/v1/models", responses=ERROR_RESPONSES)
    async def models(http: HTTPRequest) -> ModelList:
        authorize(http)
        return serving.models()

    @app.get("/v1/models/{model_id:path}", responses=ERROR_RESPONSES)
    async def model(model_id: str, http: HTTPRequest) -> ModelObject:
        authorize(http)
        return serving.model(model_id)

    @app.post(
        "/v1/ask",
        response_model=None,
        responses=ask_responses(),
        openapi_extra=body_schema(AskRequest),
    )
    async def ask(http: HTTPRequest) -> JSONResponse | StreamingResponse:
        authorize(http)
        return await serving.ask(http, await read_json_body(http, config))

    @app.post(
        "/v1/chat/completions",
        response_model=None,
        responses=chat_responses(),
        openapi_extra=body_schema(ChatRequest),
    )
    async def chat(http: HTTPRequest) -> JSONResponse | StreamingResponse:
        authorize(http)
        return await serving.chat(http, await read_json_body(http, config))

    return app


# ------------------------------------------------------------------------------- OpenAPI

#: The ``responses=`` of every route: its errors, documented once.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "The body is not a JSON object.",
        401: "Missing or wrong token.",
        403: "A browser page of another site, or a Host this server does not answer to.",
        408: "The body did not arrive in time.",
        413: "The body or the image is too large.",
        415: "The body is not declared application/json.",
        422: "A field has a value this server cannot honour (param names it).",
        503: "Busy (queue or pixel budget full): retry after Retry-After seconds.",
    }.items()
}


#: Models the routes read by hand or write as streams: ``/openapi.json`` gets them as components.
REQUEST_MODELS: tuple[type[BaseModel], ...] = (AskRequest, ChatRequest)
STREAM_MODELS: tuple[type[BaseModel], ...] = (
    AskDelta,
    AskDone,
    AskStreamError,
    ChatCompletionChunk,
)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose body (read by hand) is ``model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(model)}},
        }
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def ask_responses() -> dict[int | str, dict[str, Any]]:
    """``/v1/ask``: one JSON answer, or a stream of events as NDJSON or SSE."""
    events = {"oneOf": [_ref(m) for m in (AskDelta, AskDone, AskStreamError)]}
    return {
        200: {
            "model": AskResponse,
            "description": "The answer; with stream, one event per line (NDJSON) or per "
            "'data:' line (SSE): deltas, then done (or error).",
            "content": {
                "application/x-ndjson": {"schema": events},
                "text/event-stream": {"schema": events},
            },
        },
        **ERROR_RESPONSES,
    }


def chat_responses() -> dict[int | str, dict[str, Any]]:
    """``/v1/chat/completions``: a completion, or a stream of chunks as SSE."""
    return {
        200: {
            "model": ChatCompletion,
            "description": "The completion; with stream, 'data: <chunk>' events, then "
            "'data: [DONE]'.",
            "content": {"text/event-stream": {"schema": _ref(ChatCompletionChunk)}},
        },
        **ERROR_RESPONSES,
    }


def add_components(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (FastAPI's OpenAPI document) with the request and stream models added to its
    components, which the routes reference but FastAPI does not see."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for models, mode in ((REQUEST_MODELS, "validation"), (STREAM_MODELS, "serialization")):
        _, defs = pydantic.json_schema.models_json_schema(
            [(m, mode) for m in models],  # type: ignore[misc]
            ref_template="#/components/schemas/{model}",
        )
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
    return schema


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

    ``with ServerThread(app) as url: ...`` — used by tests and benchmarks (``vipstudio serve``
    runs uvicorn itself).
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
