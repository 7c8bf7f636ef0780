"""The engine interface every front end uses: requests, answers, streaming, cancellation.

Two implementations share it: :class:`vip_model.hf.HFEngine` (transformers, in process) and
:class:`vip_model.client.RemoteEngine` (a client of our HTTP server). The values that cross that
process boundary (``GenerationSettings``, ``Request``, ``Answer`` with its ``Timings``,
``EngineInfo``) are frozen dataclasses with ``to_dict``/``from_dict``, and ``from_dict`` rejects
unknown keys. No torch, no transformers, no Qt in this module.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image

import overlays
from overlays import ImageUnreadable, Prompt, image_io
from overlays.keys import expect_keys
from vip_model.errors import InvalidRequest
from vip_model.templates import (
    DEFAULT_TEMPLATE,
    IMAGE_TOKEN,
    TEMPLATES,
    Template,
    Turn,
    get_template,
)

FinishReason = Literal["stop", "length", "cancelled"]
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "cancelled")

#: Upper bound of ``max_new_tokens``; servers may set a lower one of their own.
MAX_NEW_TOKENS = 4096


def _number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise InvalidRequest(f"{name} must be in {bracket}{low:g}, {high:g}], got {value!r}")
    return float(value)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate. ``temperature`` 0 means greedy (deterministic); ``seed`` fixes sampling."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    num_beams: int = 1
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "temperature", _number(self.temperature, "temperature", 0.0, 2.0))
        set_(self, "top_p", _number(self.top_p, "top_p", 0.0, 1.0, low_open=True))
        _integer(self.max_new_tokens, "max_new_tokens", 1, MAX_NEW_TOKENS)
        _integer(self.num_beams, "num_beams", 1, 16)
        set_(
            self,
            "repetition_penalty",
            _number(self.repetition_penalty, "repetition_penalty", 0.0, 10.0, low_open=True),
        )
        if self.seed is not None:
            _integer(self.seed, "seed", 0, 2**63 - 1)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> GenerationSettings:
        """Settings from a dict; missing keys take their defaults, unknown keys are an error."""
        expect_keys(data, {f.name for f in fields(cls)}, "settings", error=InvalidRequest)
        return cls(**data)

    def replace(self, **changes: Any) -> GenerationSettings:
        """A copy with ``changes`` applied (validated)."""
        expect_keys(changes, {f.name for f in fields(self)}, "settings", error=InvalidRequest)
        return replace(self, **changes)


def encode_image(image: Image.Image, format: str = "PNG") -> str:
    """``image`` as base64 text (lossless PNG by default), for JSON transport."""
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_image(data: bytes | str, max_pixels: int = overlays.MAX_PIXELS) -> Image.Image:
    """An RGB image from encoded bytes (or their base64 text), decoded exactly as the CLI reads a
    file (:func:`overlays.image_io.decode_image`: pixel limit checked *before* decoding, EXIF
    orientation applied). Raises ``overlays.ImageUnreadable`` / ``overlays.ImageTooLarge``."""
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError:
            raise ImageUnreadable("the image is not valid base64 text") from None
    return image_io.decode_image(data, max_pixels)


@dataclass(frozen=True)
class Request:
    """One question about one image marked with visual prompts, after earlier turns.

    The image is not copied: do not draw on it once a request holds it (engines may remember
    an image object between turns). Prompts are drawn by the engine, on a copy.
    """

    image: Image.Image
    question: str
    prompts: tuple[Prompt, ...] = ()
    history: tuple[Turn, ...] = ()
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    template: str = DEFAULT_TEMPLATE
    #: Replaces the template's system text (an OpenAI ``system`` message); None keeps it.
    system: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.image, Image.Image):
            raise InvalidRequest(f"image must be a PIL image, got {type(self.image).__name__}")
        if self.image.width < 1 or self.image.height < 1:
            raise InvalidRequest("the image is empty (0 pixels)")
        object.__setattr__(self, "prompts", tuple(self.prompts))
        object.__setattr__(self, "history", tuple(self.history))
        for p in self.prompts:
            if type(p) not in overlays.PROMPT_TYPES.values():
                raise InvalidRequest(f"prompts must be overlays prompts, got {type(p).__name__}")
        for t in self.history:
            if not isinstance(t, Turn):
                raise InvalidRequest(f"history must hold Turn objects, got {type(t).__name__}")
        if not isinstance(self.settings, GenerationSettings):
            raise InvalidRequest("settings must be a GenerationSettings")
        if self.system is not None and not isinstance(self.system, str):
            raise InvalidRequest("system must be text")
        if self.system is not None and IMAGE_TOKEN in self.system:
            raise InvalidRequest(f"the system text must not contain {IMAGE_TOKEN!r}")
        # Renders the conversation once: an empty question or an unknown template fails here.
        self.text()

    def conversation_template(self) -> Template:
        """The named template, its system text replaced when the request carries one."""
        template = get_template(self.template)
        return template if self.system is None else replace(template, system=self.system)

    def text(self) -> str:
        """The conversation text the model reads (with one ``<image>`` placeholder)."""
        return self.conversation_template().prompt(self.history, self.question)

    def follow_up(self, answer: str, question: str) -> Request:
        """The next request of this conversation: this turn answered, a new question."""
        return replace(
            self, history=(*self.history, Turn(self.question, answer)), question=question
        )

    def to_dict(self, image_format: str = "PNG") -> dict[str, Any]:
        return {
            "image": encode_image(self.image, image_format),
            "question": self.question,
            "prompts": [overlays.prompt_to_dict(p) for p in self.prompts],
            "history": [t.to_dict() for t in self.history],
            "settings": self.settings.to_dict(),
            "template": self.template,
            **({"system": self.system} if self.system is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Any, max_pixels: int = overlays.MAX_PIXELS) -> Request:
        """The inverse of :meth:`to_dict`; the image is base64 text of an encoded image file."""
        keys = {"image", "question", "prompts", "history", "settings", "template", "system"}
        expect_keys(data, keys, "request", required={"image", "question"}, error=InvalidRequest)
        prompts = data.get("prompts") or []
        if not isinstance(prompts, list):
            raise InvalidRequest("prompts must be a list of prompt objects")
        history = data.get("history") or []
        if not isinstance(history, list):
            raise InvalidRequest("history must be a list of {question, answer} objects")
        if not isinstance(data["question"], str):
            raise InvalidRequest("question must be text")
        return cls(
            image=decode_image(data["image"], max_pixels),
            question=data["question"],
            prompts=tuple(overlays.prompt_from_dict(p) for p in prompts),
            history=tuple(Turn.from_dict(t) for t in history),
            settings=GenerationSettings.from_dict(data.get("settings") or {}),
            template=data.get("template", DEFAULT_TEMPLATE),
            system=data.get("system"),
        )


@dataclass(frozen=True)
class Timings:
    """Seconds spent: loading the model for this answer (0 when resident), until the first
    token, in total (excluding loading), and the decoding rate after the first token."""

    load_s: float = 0.0
    ttft_s: float = 0.0
    total_s: float = 0.0
    tokens_per_s: float = 0.0


@dataclass(frozen=True)
class Answer:
    """The model's answer. ``cached_tokens`` of the prompt came from the prefix KV cache."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    timings: Timings = field(default_factory=Timings)
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Answer:
        allowed = {f.name for f in fields(cls)}
        required = {"text", "finish_reason"}
        expect_keys(data, allowed, "answer", required=required, error=InvalidRequest)
        if data["finish_reason"] not in FINISH_REASONS:
            raise InvalidRequest(f"finish_reason must be one of {FINISH_REASONS}")
        timings = data.get("timings") or {}
        expect_keys(timings, {f.name for f in fields(Timings)}, "timings", error=InvalidRequest)
        return cls(**{**data, "timings": Timings(**timings)})


class CancelToken:
    """Cooperative cancellation: any thread may call :meth:`cancel`; the engine checks it
    between generated tokens and stops with ``finish_reason == "cancelled"``."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled (True) or ``timeout`` seconds passed (False)."""
        return self._event.wait(timeout)


class Streamed(Iterator[str]):
    """The text of one answer, piece by piece, as it is generated.

    Iterate it for the deltas (their concatenation is ``answer.text``); after the last one,
    :attr:`answer` holds the full :class:`Answer`. :meth:`close` (or leaving a ``with`` block,
    or dropping the iteration early) cancels the generation and frees the engine.
    """

    def __init__(self, pieces: Generator[str, None, Answer], cancel: CancelToken) -> None:
        self._pieces = pieces
        self._cancel = cancel
        self._answer: Answer | None = None

    def __iter__(self) -> Streamed:
        return self

    def __next__(self) -> str:
        if self._answer is not None:
            raise StopIteration
        try:
            return next(self._pieces)
        except StopIteration as stop:
            self._answer = stop.value
            raise

    @property
    def done(self) -> bool:
        return self._answer is not None

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            raise RuntimeError("the answer is not complete: iterate to the end, or call result()")
        return self._answer

    def result(self) -> Answer:
        """Consume the remaining pieces and return the answer."""
        for _ in self:
            pass
        return self.answer

    def cancel(self) -> None:
        """Ask the generation to stop; keep iterating to get the partial answer."""
        self._cancel.cancel()

    def close(self) -> None:
        """Cancel and release the generation without waiting for an answer."""
        if self._answer is None:
            self._cancel.cancel()
            self._pieces.close()

    def __enter__(self) -> Streamed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class EngineInfo:
    """What an engine runs. Fields an implementation does not know stay at their defaults."""

    engine: str
    model: str
    loaded: bool = False
    device: str = ""
    dtype: str = ""
    quantization: str | None = None
    attn_implementation: str = ""
    load_s: float = 0.0
    image_size: int = 0
    image_tokens: int = 0
    vision_feature_layer: tuple[int, ...] = ()
    config_corrected: bool = False
    prefix_cache: bool = False
    max_batch_size: int = 1
    templates: tuple[str, ...] = tuple(TEMPLATES)
    default_template: str = DEFAULT_TEMPLATE

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["vision_feature_layer"] = list(self.vision_feature_layer)
        out["templates"] = list(self.templates)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> EngineInfo:
        allowed = {f.name for f in fields(cls)}
        required = {"engine", "model"}
        expect_keys(data, allowed, "engine info", required=required, error=InvalidRequest)
        data = dict(data)
        for key in ("vision_feature_layer", "templates"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


@runtime_checkable
class Engine(Protocol):
    """A ViP-LLaVA that answers requests. Implementations are safe to call from any thread."""

    def stream(self, request: Request, cancel: CancelToken | None = None) -> Streamed:
        """Start answering; the returned object yields text deltas, then holds the answer."""
        ...

    def ask(self, request: Request, cancel: CancelToken | None = None) -> Answer:
        """Answer one request (blocking)."""
        ...

    def batch(self, requests: Sequence[Request], cancel: CancelToken | None = None) -> list[Answer]:
        """Answer many requests together; answers come back in the order of ``requests``."""
        ...

    def info(self) -> EngineInfo: ...

    def close(self) -> None:
        """Free the model (the engine cannot answer afterwards)."""
        ...


__all__ = [
    "FINISH_REASONS",
    "MAX_NEW_TOKENS",
    "Answer",
    "CancelToken",
    "Engine",
    "EngineInfo",
    "FinishReason",
    "GenerationSettings",
    "Request",
    "Streamed",
    "Timings",
    "Turn",
    "decode_image",
    "encode_image",
]
