"""`ask --batch` lines about a video: ``{"id", "video", "t" | "frame", "question", "bboxes" |
"prompts" [, "every", "until", "track"]}``.

A line asks at one frame (its record keeps the line's ``id``) or, with ``every``, at each sampled
frame (records ``"<id>@<frame>"``, so that a rerun skips the frames already answered). Frames
after a lost track get error records saying so; nothing drifts. Runs on the batch's worker
threads: the video is opened, the regions tracked, the frames decoded and their requests
prepared here; the engine then answers them in the batch's chunks with every other line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from app.ask_video import MAX_FRAMES_PER_LINE, FramePlan, WhenError, frame_label, plan
from app.batch_query import BadQuery, Query
from data_gen.qalog.log import NewTurn, QALog
from data_gen.qalog.log_types import ImageFile
from data_gen.qalog.log_video import frame_image
from overlays.video_io import VideoInfo, VideoReader
from vip_model.engine import Request
from vip_model.prepare import AnswerRecord, prepare_request


@dataclass(frozen=True)
class FrameJob:
    """What a frame's answer needs besides its request: its record id, which frame, and (when
    logging) the video and the frame's image row; ``tracks`` rides on a line's first frame."""

    record_id: str
    plan: FramePlan
    label: str  # "<video as given>#frame=<i>", the record's "image"
    video: VideoInfo | None = None
    image: ImageFile | None = None
    tracks: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class FrameError:
    """A sampled frame without an answer (a lost track, a prompt off the frame)."""

    job: FrameJob
    message: str
    kind: str


@dataclass(frozen=True)
class FrameReady:
    """A frame's request, ready for the engine."""

    job: FrameJob
    request: Request
    refs: list[Any]
    size: tuple[int, int]


@dataclass(frozen=True)
class VideoPrepared:
    """A video line, prepared: its frames (ready or failed), and how many were answered before."""

    frames: list[FrameReady | FrameError]
    skipped: int = 0


def prepare_video(
    query: Query,
    template: str,
    max_pixels: int,
    *,
    done: Set[str] = frozenset(),
    log: bool = False,
    forbidden: frozenset[tuple[int, int]] = frozenset(),
) -> VideoPrepared:
    """Open the line's video, plan (and track) its frames, and prepare each frame's request
    (worker thread). With ``log``, hash the video and each frame for the log."""
    from app.batch import query_prompts

    when = query.when
    assert when is not None
    _refuse_inputs(query, forbidden)
    with VideoReader(query.image_path, max_pixels=max_pixels) as reader:
        prompts = query_prompts(query, (reader.width, reader.height))
        if when.track and not prompts:
            raise BadQuery('"track" needs a region to follow: give "bboxes" or "prompts"')
        try:
            planned = plan(reader, prompts, when, max_frames=MAX_FRAMES_PER_LINE)
        except WhenError as exc:
            raise BadQuery(str(exc)) from None
        info = reader.info if log else None
        over_time = when.every is not None
        frames: list[FrameReady | FrameError] = []
        skipped = 0
        tracks = planned.tracks
        for frame in planned.frames:
            record_id = f"{query.id}@{frame.index}" if over_time else query.id
            if over_time and record_id in done:
                skipped += 1
                continue
            label = frame_label(query.image_path, frame.index)
            job = FrameJob(record_id, frame, label, info)
            if frame.prompts is None:
                frames.append(FrameError(job, frame.lost or "no prompts here", "TrackLost"))
                continue
            image = reader.frame(frame.index)
            try:
                prepared = prepare_request(
                    image,
                    query.question_text,
                    frame.prompts,
                    settings=query.settings,
                    template=template,
                )
            except Exception as exc:  # this frame's prompts only (e.g. tracked off the frame)
                frames.append(FrameError(job, str(exc), type(exc).__name__))
                continue
            if info is not None:
                job = FrameJob(
                    record_id, frame, label, info, frame_image(info, frame.index, image), tracks
                )
                tracks = []  # stored once, with the line's first logged frame
            frames.append(FrameReady(job, prepared.request, list(prepared.refs), image.size))
    return VideoPrepared(frames, skipped)


def log_frame(log: QALog, turn: NewTurn, job: FrameJob) -> int:
    """Record a frame's turn (with its video and frame; the line's tracks with its first)."""
    assert job.video is not None
    recorded = log.record_turn(
        turn,
        image=job.image,
        video=job.video,
        frame_index=job.plan.index,
        frame_time=job.plan.time,
    )
    if job.tracks:
        video_id = log.add_video(job.video).id
        for region, track in enumerate(job.tracks):
            log.save_track(video_id, region, track, session_id=recorded.session_id)
    return recorded.turn_id


def at_frame(record: AnswerRecord, job: FrameJob, video: str) -> AnswerRecord:
    """``record`` as the answer about a video's frame: its id, the frame's name and time."""
    return dataclasses.replace(
        record,
        id=job.record_id,
        image=job.label,
        video=video,
        frame=job.plan.index,
        t=job.plan.time,
    )


def _refuse_inputs(query: Query, forbidden: frozenset[tuple[int, int]]) -> None:
    try:
        st = os.stat(query.image_path)
    except (OSError, ValueError):
        return  # the reader says what is wrong
    if (st.st_dev, st.st_ino) in forbidden:
        raise BadQuery(f"{query.image_path}: is the queries, the answers or the log, not a video")


__all__ = [
    "FrameError",
    "FrameJob",
    "FrameReady",
    "VideoPrepared",
    "at_frame",
    "log_frame",
    "prepare_video",
]
