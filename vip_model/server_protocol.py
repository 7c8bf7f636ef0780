"""The model server's wire protocol: typed request, response and error bodies (pydantic).

Every body the server reads or writes has a model here, so that ``/openapi.json`` documents it.
Request bodies are read by hand (:func:`vip_model.server_limits.read_json_body`: media type,
size, deadline, JSON, Unicode) and then validated with :func:`validated`; the engine's own parsing
(:meth:`Request.from_dict`, :func:`openai_to_request`) still decides what the values mean. Every
error is one shape, OpenAI's ``{"error": {"message", "type", "param", "code"}}``. No Qt.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

import overlays
from vip_model.errors import InvalidRequest, ModelError, OutOfMemory
from vip_model.templates import DEFAULT_TEMPLATE

# ------------------------------------------------------------------------------- errors

#: OpenAI's error ``type`` and our ``code`` per HTTP status.
_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "invalid_value"),
    499: ("invalid_request_error", "client_closed_request"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "server_busy"),
}


class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong and how to fix it, in one sentence.")
    type: str = Field(description="OpenAI's error type, e.g. invalid_request_error.")
    param: str | None = Field(
        description="The request field at fault (a path such as messages[0].content), when one is."
    )
    code: str | None = Field(description="A stable code, e.g. invalid_value, server_busy.")


class ErrorResponse(BaseModel):
    """Every error the server answers, unknown routes included."""

    error: ErrorDetail


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An error as OpenAI sends it: ``{"error": {"message", "type", "param", "code"}}``."""
    kind, default_code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", str(status))
    )
    return {
        "error": {"message": message, "type": kind, "param": param, "code": code or default_code}
    }


def status_of(exc: BaseException) -> int:
    """The HTTP status of an error raised while reading, preparing or answering a request."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, overlays.ImageTooLarge):
        return 413
    if isinstance(exc, InvalidRequest | overlays.OverlayError):
        return 422
    if isinstance(exc, OutOfMemory):
        return 503
    return 500


def error_message(exc: BaseException) -> str:
    if isinstance(exc, HTTPException):
        detail = exc.detail
        return str(detail["message"]) if isinstance(detail, dict) else str(detail)
    if isinstance(exc, ModelError | overlays.OverlayError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


class ClientGone(HTTPException):
    """The client closed the connection before its answer (499: nobody reads this answer)."""

    def __init__(self) -> None:
        super().__init__(499, "client closed the request")


# ------------------------------------------------------------------------------- validation

_Body = TypeVar("_Body", bound=BaseModel)

#: Names pydantic puts into an error's location for the member of a union it tried.
_UNION_TAGS = {"str", "int", "float", "bool", "none", "dict", "list"}


def validated(model: type[_Body], body: dict[str, Any]) -> _Body:
    """``body`` checked against ``model``; the first problem as a 422 naming its field."""
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        # Of a union's alternatives (text or a list of parts), the one that got furthest says
        # what is wrong: "content[0].type", not "content: should be a string".
        first = max(exc.errors(include_url=False), key=lambda e: len(e["loc"]))
        param = field_path(first["loc"])
        if first["type"] == "extra_forbidden":
            message = f"unknown key {param!r}: not a field of this request (see /openapi.json)"
        else:
            message = f"{param or 'body'}: {first['msg']}"
        raise HTTPException(422, {"message": message, "param": param or None}) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as OpenAI writes a ``param``: ``messages[0].content``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS or "[" in part or part[:1].isupper():
            continue  # the union member pydantic tried, not a field
        else:
            out += f".{part}" if out else part
    return out


class _Strict(BaseModel):
    # Strict: "1" is not a number and true is not 1, as for the engine's own parsing.
    model_config = ConfigDict(strict=True, extra="forbid")


class _Open(BaseModel):
    # OpenAI clients send keys of their own inside messages (name, refusal...): ignored.
    model_config = ConfigDict(strict=True, extra="allow")


# ------------------------------------------------------------------------------- native /v1/ask

_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
#: Fields every prompt kind may carry besides its own (see :func:`overlays.prompt_to_dict`).
_COMMON_FIELDS: dict[str, Any] = {
    "style": {
        "type": ["object", "null"],
        "description": "How it is drawn; missing keys take their defaults.",
        "properties": {
            "color": {
                "description": "A colour name ('red') or [r, g, b].",
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}],
            },
            "alpha": {"type": "integer", "minimum": 0, "maximum": 255},
            "width": {"type": "number"},
        },
        "additionalProperties": False,
    },
    "label": {"type": ["string", "null"]},
    "region": {
        "type": ["object", "null"],
        "description": "The region the prompt marks (its box, and its polygons for a mask).",
        "properties": {
            "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
            "polygons": {"type": ["array", "null"], "items": {"type": "array", "items": _POINT}},
        },
        "required": ["box"],
        "additionalProperties": False,
    },
}


def _prompt_schema() -> dict[str, Any]:
    """The JSON form of every overlays prompt kind, read from the prompt classes themselves:
    :func:`overlays.prompt_from_dict` checks it, this documents it (the two cannot drift)."""
    kinds = []
    for kind, cls in overlays.PROMPT_TYPES.items():
        hints = typing.get_type_hints(cls)
        properties: dict[str, Any] = {"kind": {"const": kind}}
        required = ["kind"]
        for f in dataclasses.fields(cls):
            if f.name in _COMMON_FIELDS:
                continue
            properties[f.name] = pydantic.TypeAdapter(hints[f.name]).json_schema()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        kinds.append(
            {
                "title": f"{cls.__name__} prompt",
                "type": "object",
                "properties": {**properties, **_COMMON_FIELDS},
                "required": required,
                "additionalProperties": False,
            }
        )
    return {
        "oneOf": kinds,
        "description": "A visual prompt drawn on the image (pixel coordinates): the JSON form of "
        "overlays prompts ('mask contour' is read as 'contour').",
        "examples": [{"kind": "rectangle", "box": [180, 20, 420, 230]}],
    }


#: A visual prompt (checked by :func:`overlays.prompt_from_dict`, which names what is wrong).
PromptJSON = Annotated[dict[str, Any], WithJsonSchema(_prompt_schema())]


class HistoryTurn(_Strict):
    question: str
    answer: str


class Settings(_Strict):
    """How to generate (the engine's ``GenerationSettings``); missing keys take defaults."""

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0: greedy (deterministic).")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(512, ge=1, description="At most the server's own limit.")
    num_beams: int = Field(1, ge=1, le=16)
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    seed: int | None = Field(None, ge=0)


class AskRequest(_Strict):
    """One question about one image marked with visual prompts (the engine's ``Request``)."""

    image: str = Field(description="The image file (PNG, JPEG, ...) as base64 text.")
    question: str
    prompts: list[PromptJSON] | None = None
    history: list[HistoryTurn] | None = None
    settings: Settings | None = None
    template: str = DEFAULT_TEMPLATE
    system: str | None = Field(None, description="Replaces the template's system text.")
    stream: bool = Field(False, description="Answer token by token (NDJSON, or SSE).")
    format: Literal["ndjson", "sse"] = Field("ndjson", description="The stream's framing.")


class Timings(BaseModel):
    load_s: float
    ttft_s: float
    total_s: float
    tokens_per_s: float


class AnswerBody(BaseModel):
    """The engine's ``Answer``."""

    text: str
    finish_reason: Literal["stop", "length", "cancelled"]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    timings: Timings
    model: str


class AskResponse(BaseModel):
    model: str
    answer: AnswerBody


class AskDelta(BaseModel):
    """A piece of the answer's text (streams only)."""

    delta: str


class AskDone(BaseModel):
    """The last event of a stream that was answered."""

    done: Literal[True]
    answer: AnswerBody


class AskStreamError(BaseModel):
    """The last event of a stream that failed after it started."""

    error: str


#: One line of an NDJSON stream (``data: <json>`` of an SSE stream) of ``/v1/ask``.
AskStreamEvent = AskDelta | AskDone | AskStreamError


# ------------------------------------------------------------------------------- OpenAI chat


class ImageURL(_Open):
    url: str = Field(description="A data URL (data:image/png;base64,...): no URL is fetched.")
    detail: str | None = None


class ContentPart(_Open):
    type: Literal["text", "image_url"]
    text: str = ""
    image_url: ImageURL | str | None = None


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Strict):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatRequest(_Strict):
    """OpenAI's chat-completions body; the image as a data URL in one user message, the visual
    prompts in ``vip_prompts``. Fields are honoured or refused, never silently dropped."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    response_format: dict[str, Any] | None = Field(None, description='Only {"type": "text"}.')
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0)
    n: int | None = Field(None, description="Must be 1 (or null): one choice per request.")
    stop: str | list[str] | None = Field(None, description="Refused: the template stops.")
    vip_prompts: list[PromptJSON] | None = None
    vip_template: str = DEFAULT_TEMPLATE
    vip_repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    vip_num_beams: int = Field(1, ge=1, le=16)
    # Standard fields that change nothing here: accepted and ignored.
    user: Any = None
    frequency_penalty: Any = None
    presence_penalty: Any = None
    logprobs: Any = None
    top_logprobs: Any = None
    metadata: Any = None
    store: Any = None
    parallel_tool_calls: Any = None
    service_tier: Any = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: ChunkDelta
    finish_reason: Literal["stop", "length"] | None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a chat stream (the stream ends with ``data: [DONE]``); with
    ``stream_options.include_usage`` the last chunk has no choices and the usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


# ------------------------------------------------------------------------------- models, health


class ModelObject(BaseModel):
    id: str = Field(description="The hub id, or a local folder by its own name (never a path).")
    object: Literal["model"]
    created: int
    owned_by: str
    vip: dict[str, Any] = Field(description="What the engine runs (the engine's EngineInfo).")


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelObject]


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    loaded: bool
    queued: int
    answered: int
    batches: int
    cancelled: int
    split_batches: int
    pixels_in_use: int
    pixels_peak: int
    pixels_refused: int
