"""OpenAI chat-completions ⇄ our engine's requests and answers.

Lets any OpenAI client (and the chat panels of other annotation tools) talk to ViP-LLaVA:
the image comes as an ``image_url`` content part holding a ``data:`` URL, visual prompts in the
``vip_prompts`` extension field (our JSON prompt form), the template in ``vip_template``.
ViP-LLaVA takes one image per conversation; the server never fetches URLs.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import overlays
from vip_model.engine import Answer, GenerationSettings, Request, decode_image
from vip_model.errors import InvalidRequest
from vip_model.templates import DEFAULT_TEMPLATE, Turn

# Standard OpenAI fields we accept; those that change nothing here are ignored on purpose.
_IGNORED = {
    "user",
    "stream_options",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "response_format",
    "metadata",
    "store",
    "parallel_tool_calls",
    "service_tier",
}
_USED = {
    "model",
    "messages",
    "stream",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "n",
    "stop",
    "vip_prompts",
    "vip_template",
    "vip_repetition_penalty",
    "vip_num_beams",
}


@dataclass(frozen=True)
class ParsedChat:
    request: Request
    stream: bool
    include_usage: bool


def openai_to_request(body: dict[str, Any], max_pixels: int = overlays.MAX_PIXELS) -> ParsedChat:
    """Our :class:`Request` from an OpenAI chat-completions body; errors name the field."""
    unknown = set(body) - _USED - _IGNORED
    if unknown:
        raise InvalidRequest(f"unsupported field(s) {', '.join(sorted(unknown))}")
    if body.get("n", 1) != 1:
        raise InvalidRequest("n must be 1: ask again for another answer")
    if body.get("stop"):
        raise InvalidRequest("stop sequences are not supported; the template sets its own")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list")
    image = None
    turns: list[tuple[str, str]] = []  # (role, text) of user/assistant messages
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise InvalidRequest(f"messages[{i}] must be an object with a role")
        role = message["role"]
        if role in ("system", "developer"):
            continue  # ViP-LLaVA's system text is part of its template
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"messages[{i}]: role {role!r} is not supported (user, assistant)")
        text, found = _content(message.get("content"), i, max_pixels)
        if found is not None:
            if role != "user" or image is not None:
                raise InvalidRequest(
                    "ViP-LLaVA takes exactly one image per conversation, in a user message"
                )
            image = found
        turns.append((role, text))
    if image is None:
        raise InvalidRequest(
            "no image: add an image_url content part with a data URL "
            "(data:image/png;base64,...); the server fetches no URLs"
        )
    if not turns or turns[-1][0] != "user":
        raise InvalidRequest("the last message must be the user's question")
    history: list[Turn] = []
    pending: str | None = None
    for role, text in turns[:-1]:
        if role == "user":
            if pending is not None:
                raise InvalidRequest("user and assistant messages must alternate")
            pending = text
        else:
            if pending is None:
                raise InvalidRequest("an assistant message must follow a user message")
            history.append(Turn(pending, text))
            pending = None
    if pending is not None:
        raise InvalidRequest("user and assistant messages must alternate")
    prompts_raw = body.get("vip_prompts") or []
    if not isinstance(prompts_raw, list):
        raise InvalidRequest("vip_prompts must be a list of prompt objects")
    settings = GenerationSettings(
        temperature=body.get("temperature", 0.0) if body.get("temperature") is not None else 0.0,
        top_p=body.get("top_p", 1.0) if body.get("top_p") is not None else 1.0,
        max_new_tokens=body.get("max_completion_tokens") or body.get("max_tokens") or 512,
        seed=body.get("seed"),
        repetition_penalty=body.get("vip_repetition_penalty", 1.0),
        num_beams=body.get("vip_num_beams", 1),
    )
    options = body.get("stream_options") or {}
    request = Request(
        image=image,
        question=turns[-1][1],
        prompts=tuple(overlays.prompt_from_dict(p) for p in prompts_raw),
        history=tuple(history),
        settings=settings,
        template=body.get("vip_template", DEFAULT_TEMPLATE),
    )
    return ParsedChat(request, bool(body.get("stream")), bool(options.get("include_usage")))


def _content(content: Any, index: int, max_pixels: int) -> tuple[str, Any]:
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        raise InvalidRequest(f"messages[{index}].content must be text or a list of parts")
    texts: list[str] = []
    image = None
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":
            if image is not None:
                raise InvalidRequest("ViP-LLaVA takes exactly one image per conversation")
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            image = decode_image(_data_url_bytes(url), max_pixels)
        else:
            raise InvalidRequest(f"messages[{index}]: content part type {kind!r} is not supported")
    return "\n".join(t for t in texts if t), image


def _data_url_bytes(url: Any) -> bytes:
    if not isinstance(url, str) or not url.startswith("data:"):
        raise InvalidRequest(
            "image_url must be a data URL (data:image/png;base64,...): the server fetches no URLs "
            "and reads no files"
        )
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise InvalidRequest("the image data URL must be base64-encoded (';base64,')")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("the image data URL holds invalid base64") from None


def completion_body(completion_id: str, created: int, model: str, answer: Answer) -> dict[str, Any]:
    """A ``chat.completion`` object for a finished answer."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "length" if answer.finish_reason == "length" else "stop",
            }
        ],
        "usage": _usage(answer),
    }


def completion_chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    usage: Answer | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` (``delta`` None and ``usage`` set: the usage chunk)."""
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = _usage(usage)
    return chunk


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
