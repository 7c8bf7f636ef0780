"""One preparation of a request, beneath every front door (CLI, batch, desktop app, importers).

regions → prompts (:func:`region_prompt`, one seed rule) → question with its region references
composed (:func:`prepare_request`) → :class:`~vip_model.engine.Request`. The doors differ in how
they read their input (flags, JSONL lines, the canvas, the log); from here on the path is one.
Qt-free and click-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

import overlays as ov
from vip_model.engine import Answer, GenerationSettings, Request
from vip_model.templates import DEFAULT_TEMPLATE, Turn


def region_seed(seed: int, index: int) -> int:
    """The seed of the prompt drawn for the ``index``-th region of a request (from 0).

    The one rule of every door (`render`, `ask`, `ask --batch`, `import --queries`): the same
    boxes, shape and seed give the same prompts, and a region's prompt does not depend on the
    regions before it.
    """
    return seed + index


def region_prompt(
    shape: str,
    region: ov.Region,
    image_size: tuple[int, int],
    *,
    seed: int,
    index: int = 0,
    label: str | None = None,
) -> ov.Prompt:
    """A ``shape`` prompt marking ``region`` (clipped to the image), sampled as in training
    from :func:`region_seed`. Raises :class:`overlays.PromptOutsideImage` for a region
    entirely outside the image and :class:`overlays.InvalidPrompt` for an unknown shape."""
    fitted = ov.fit_region(region, image_size)
    return ov.generate(shape, fitted, image_size, rng=region_seed(seed, index), label=label)


@dataclass(frozen=True)
class Prepared:
    """The request a door sends, and where its question names each region (for the log)."""

    request: Request
    refs: tuple[ov.RegionRef, ...]


def prepare_request(
    image: Image.Image,
    question: str,
    prompts: Sequence[ov.Prompt] = (),
    *,
    history: Sequence[Turn] = (),
    settings: GenerationSettings | None = None,
    template: str = DEFAULT_TEMPLATE,
) -> Prepared:
    """The request for ``question`` about ``image`` marked with ``prompts``.

    Each prompt is checked against the image (its explicit region clipped, as stored); the
    ``<region0>``/``<bbox0>`` references of the question become referring phrases ("the object
    within the red rectangle"), so the model, the log and the exports read the same text.
    Raises :class:`overlays.OverlayError` for a prompt off the image or a reference to a
    region that does not exist, :class:`~vip_model.errors.InvalidRequest` for the rest.
    """
    size = image.size
    fitted = tuple(ov.fit_to_image(p, size) for p in prompts)
    composed, refs = ov.compose_question(question, fitted)
    request = Request(
        image=image,
        question=composed,
        prompts=fitted,
        history=tuple(history),
        settings=settings if settings is not None else GenerationSettings(),
        template=template,
    )
    return Prepared(request, tuple(refs))


@dataclass(frozen=True)
class AnswerRecord:
    """One answer as the doors print and write it: the one JSON shape of `ask --json` and of
    an `ask --batch` line (which adds the query's ``id``).

    An answer about a video frame also names the ``video``, the ``frame`` index and its time
    ``t`` in seconds (then ``image`` is the frame's log path, ``"<video>#frame=<i>"``); they
    are written only when set, so an image's record is unchanged.
    """

    image: str
    question: str
    answer: str
    prompts: tuple[ov.Prompt, ...]
    model: str
    finish_reason: str | None
    turn_id: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    id: str | None = None
    video: str | None = None
    frame: int | None = None
    t: float | None = None

    @classmethod
    def of(
        cls,
        image: str,
        request: Request,
        answer: Answer,
        *,
        model: str,
        turn_id: int | None,
        id: str | None = None,
        video: str | None = None,
        frame: int | None = None,
        t: float | None = None,
    ) -> AnswerRecord:
        """The record of ``answer`` to ``request``; ``model`` is the name the log records."""
        return cls(
            image=image,
            question=request.question,
            answer=answer.text,
            prompts=request.prompts,
            model=model,
            finish_reason=answer.finish_reason,
            turn_id=turn_id,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cached_tokens=answer.cached_tokens,
            timings=asdict(answer.timings),
            id=id,
            video=video,
            frame=frame,
            t=t,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object; ``id`` first when there is one (a batch line)."""
        return {
            **({"id": self.id} if self.id is not None else {}),
            "image": self.image,
            **({"video": self.video} if self.video is not None else {}),
            **({"frame": self.frame} if self.frame is not None else {}),
            **({"t": self.t} if self.t is not None else {}),
            "question": self.question,
            "answer": self.answer,
            "prompts": [ov.prompt_to_dict(p) for p in self.prompts],
            "phrases": [ov.referring_phrase(p) for p in self.prompts],
            "model": self.model,
            "finish_reason": self.finish_reason,
            "turn_id": self.turn_id,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "timings": self.timings,
        }


__all__ = ["AnswerRecord", "Prepared", "prepare_request", "region_prompt", "region_seed"]
