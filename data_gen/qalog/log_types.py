"""The Q&A log's value types and errors (no SQL here)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

import overlays as ov
from overlays.phrases import RegionRef

REVIEW_STATES = ("unreviewed", "accepted", "edited", "rejected")
#: Who writes turns: the doors that ask (the desktop app, the CLI, a batch) and imports. A
#: server logs no turns: the doors that use one (the CLI with --server, the desktop app with a
#: remote engine) log what they ask, so a server log would record every turn twice.
SOURCES = ("gui", "cli", "batch", "import")
#: Sources that logs of earlier versions may hold: read, filtered and exported, never written.
LEGACY_SOURCES = ("server",)
Review = Literal["unreviewed", "accepted", "edited", "rejected"]


class LogError(Exception):
    """Base class of Q&A log errors; the message says what to do."""


def check_source(source: str) -> None:
    """Raise :class:`LogError` unless new sessions and turns may be written with ``source``."""
    if source in SOURCES:
        return
    if source in LEGACY_SOURCES:
        raise LogError(
            f"source {source!r} is no longer written: the server logs no turns (the CLI with "
            f"--server and the desktop app log what they ask); use one of {', '.join(SOURCES)}"
        )
    raise LogError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")


class LogCorrupt(LogError):
    """The file is not a ViP Studio log, or it is damaged."""


class LogForeign(LogCorrupt):
    """An SQLite file of another program (no ViP Studio mark): never changed."""


class LogReadOnly(LogError):
    """The log (or its folder) cannot be written; reading commands still work."""


class LogLocked(LogError):
    """Another process held the log for longer than the busy timeout."""


class LogSchemaTooNew(LogError):
    """The file was written by a newer ViP Studio."""


def default_db_path() -> Path:
    """The per-user log file (``$VIPSTUDIO_DB`` overrides it)."""
    env = os.environ.get("VIPSTUDIO_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("vipstudio", appauthor=False)) / "log.sqlite"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TurnFilters(TypedDict, total=False):
    """Which turns to read; every given filter must match. Dates are ISO text (UTC)."""

    ids: Sequence[int] | None
    image_id: int | None
    session_id: int | None
    review: Sequence[str] | None
    model: str | None
    source: str | None
    tag: str | None
    since: str | None
    until: str | None
    request_id: str | None
    #: turns about this logged video (``videos.id``)
    video_id: int | None
    #: True: video turns only; False: image turns only
    video: bool | None
    limit: int | None
    offset: int
    newest_first: bool


@dataclass
class NewTurn:
    """A finished turn to append to the log."""

    session_id: int
    prompts: Sequence[ov.Prompt]
    question: str
    answer: str
    model: str
    template: str
    source: str = "cli"
    question_refs: Sequence[RegionRef] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int | None = None
    answer_tokens: int | None = None
    finish_reason: str | None = None
    request_id: str | None = None
    tags: Sequence[str] = ()
    #: A video turn's frame (set by ``QALog.record_turn(video=...)``; None on image turns).
    video_id: int | None = None
    frame_index: int | None = None
    frame_time: float | None = None

    @classmethod
    def from_answer(
        cls,
        session_id: int,
        request: Any,
        answer: Any,
        *,
        model: str,
        source: str,
        question_refs: Sequence[RegionRef] = (),
        request_id: str | None = None,
        tags: Sequence[str] = (),
    ) -> NewTurn:
        """The turn of an engine ``Request`` and its ``Answer`` (``vip_model.engine``): the
        one place that knows which of their fields the log keeps."""
        return cls(
            session_id=session_id,
            prompts=request.prompts,
            question=request.question,
            answer=answer.text,
            model=model,
            template=request.template,
            source=source,
            question_refs=question_refs,
            settings=request.settings.to_dict(),
            timings={**asdict(answer.timings), "cached_tokens": answer.cached_tokens},
            prompt_tokens=answer.prompt_tokens or None,
            answer_tokens=answer.completion_tokens or None,
            finish_reason=answer.finish_reason,
            request_id=request_id,
            tags=tags,
        )


@dataclass(frozen=True)
class ImageFile:
    """An image to register with a turn: its path, size and content hash (read beforehand,
    outside the write lock)."""

    path: str | os.PathLike[str]
    size: tuple[int, int]
    sha256: str

    @classmethod
    def read(
        cls,
        path: str | os.PathLike[str],
        size: tuple[int, int] | None = None,
        sha256: str | None = None,
    ) -> ImageFile:
        """The file at ``path``, hashed and its header read unless given."""
        return cls(
            path,
            size if size is not None else ov.image_size(path),
            sha256 if sha256 is not None else file_sha256(path),
        )


@dataclass(frozen=True)
class Recorded:
    """Where :meth:`~data_gen.qalog.log.QALog.record_turn` stored a turn."""

    image_id: int
    session_id: int
    turn_id: int


@dataclass(frozen=True)
class TurnRow:
    """A turn as stored, with its prompts parsed back."""

    id: int
    session_id: int
    image_id: int
    idx: int
    prompts: list[ov.Prompt]
    question: str
    question_refs: list[RegionRef]
    answer: str
    model: str
    template: str
    settings: dict[str, Any]
    timings: dict[str, Any]
    prompt_tokens: int | None
    answer_tokens: int | None
    finish_reason: str | None
    source: str
    request_id: str | None
    review: str
    corrected_answer: str | None
    reviewed_at: str | None
    created_at: str
    tags: list[str]
    image_path: str
    image_sha256: str
    image_width: int
    image_height: int
    #: On a video turn: the video (``videos.id`` and path), frame index and time in seconds.
    video_id: int | None = None
    frame_index: int | None = None
    frame_time: float | None = None
    video_path: str | None = None

    @property
    def is_video(self) -> bool:
        """Whether the turn was asked about a video frame."""
        return self.video_id is not None

    @property
    def final_answer(self) -> str:
        """The corrected answer when there is one, else the model's."""
        return self.corrected_answer if self.corrected_answer is not None else self.answer


@dataclass(frozen=True)
class ImageRow:
    id: int
    sha256: str
    path: str
    width: int
    height: int


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
