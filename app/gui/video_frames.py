"""Questions about video frames, Qt-free: what a frame's turn is logged with (:class:`FrameRef`),
and "ask over time" — the same question at sampled frames, batched through the engine.

A frame is an image: its request is prepared exactly as a photo's
(:func:`vip_model.prepare.prepare_request`), from the decoded frame and the regions as they are
on that frame (keyframe, interpolated or tracked). This module runs on the model thread (the
generator) and in the log process (FrameRef is unpickled there): it never imports Qt.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

import overlays as ov
from app.gui.video_doc import shown_at
from overlays.tracks import Track
from vip_model.engine import Answer, CancelToken, Engine, GenerationSettings
from vip_model.errors import ModelError
from vip_model.prepare import Prepared

if TYPE_CHECKING:
    from overlays.video_io import VideoInfo

#: Frames sent to the engine in one batch when asking over time.
BATCH_FRAMES = 8


@dataclass(frozen=True)
class FrameRef:
    """The frame a question was asked about: the video, the frame's index and time, and the
    decoded frame (the log stores it as the turn's image, hashed by its pixels)."""

    info: VideoInfo
    index: int
    time: float
    image: Image.Image


@dataclass(frozen=True)
class PlannedFrame:
    """One frame to ask about over time: its prompts, or why there are none."""

    index: int
    time: float
    prompts: tuple[ov.Prompt, ...] | None
    why_not: str = ""


def plan_frames(
    tracks: Sequence[Track], frames: Sequence[int], times: Sequence[float]
) -> list[PlannedFrame]:
    """Each sampled frame with every region as the app shows it there
    (:func:`~app.gui.video_doc.shown_at`); a region the tracker lost leaves the frames past the
    loss without an answer, and says why (it never asks about a region that is not there)."""
    out: list[PlannedFrame] = []
    for index, t in zip(frames, times, strict=True):
        prompts: list[ov.Prompt] = []
        why = ""
        for k, track in enumerate(tracks):
            shown = shown_at(track, index)
            if shown is None:
                why = (
                    f"the tracker lost region {k} at frame {track.lost_at}: draw it again "
                    "there (a keyframe) and track on"
                )
                break
            prompts.append(shown[0])
        out.append(PlannedFrame(index, t, None if why else tuple(prompts), why))
    return out


@dataclass(frozen=True)
class FrameAnswer:
    """The outcome at one sampled frame: an answer (with what was asked), or an error."""

    plan: PlannedFrame
    prepared: Prepared | None = None
    answer: Answer | None = None
    image: Image.Image | None = None
    error: str = ""


def answer_over_time(
    engine: Engine,
    path: Path,
    plans: Sequence[PlannedFrame],
    question: str,
    settings: GenerationSettings,
    template: str,
    batch_size: int,
    cancel: CancelToken,
) -> Generator[FrameAnswer, None, int]:
    """Ask ``question`` at each planned frame, ``batch_size`` frames per ``engine.batch``; yield
    one :class:`FrameAnswer` per frame as its batch is answered; return how many were answered.
    Stops between batches once ``cancel`` is set (the answers given so far stay)."""
    from app.batch import answer_each  # the model thread only (the log process unpickles refs)
    from overlays.video_io import VideoReader
    from vip_model.prepare import prepare_request

    answered = 0
    with VideoReader(path) as reader:
        for start in range(0, len(plans), max(1, batch_size)):
            if cancel.cancelled:
                break
            chunk = plans[start : start + batch_size]
            out: list[FrameAnswer | None] = [None] * len(chunk)  # yielded in time order
            ready: list[tuple[int, Image.Image, Prepared]] = []
            for j, plan in enumerate(chunk):
                if plan.prompts is None:
                    out[j] = FrameAnswer(plan, error=plan.why_not)
                    continue
                image = reader.frame(plan.index)
                try:
                    prepared = prepare_request(
                        image, question, plan.prompts, settings=settings, template=template
                    )
                except (ModelError, ov.OverlayError, ValueError) as exc:  # this frame only
                    out[j] = FrameAnswer(plan, error=str(exc))
                    continue
                ready.append((j, image, prepared))
            answers = answer_each(engine, [p.request for _, _, p in ready])
            for (j, image, prepared), answer in zip(ready, answers, strict=True):
                if isinstance(answer, Exception):
                    out[j] = FrameAnswer(chunk[j], error=str(answer) or type(answer).__name__)
                    continue
                answered += 1
                out[j] = FrameAnswer(chunk[j], prepared, answer, image)
            for item in out:
                assert item is not None
                yield item
    return answered
