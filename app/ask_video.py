"""Questions about a video's frames, for `vipstudio ask clip.mp4 ...` and `ask --batch` lines.

Where to ask (:class:`When`: ``--at``/``--frame``, and over time ``--every``/``--until``, with
``--track`` following the regions from the start frame) becomes a list of :class:`FramePlan`
(:func:`plan`): each sampled frame with the prompts to draw on it, or why there are none (the
tracker lost a region: said on that frame and every later one, never drifted over). A frame is
an image: its request is prepared exactly as a photo's (:func:`vip_model.prepare.prepare_request`)
and its turn is logged with the video, frame index and time (:func:`log_frame_turn`).
Click-free: the doors map :class:`WhenError` and the overlays' video errors to their messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import overlays as ov
from data_gen.qalog.log import NewTurn, QALog, Recorded
from data_gen.qalog.log_video import frame_image

if TYPE_CHECKING:  # PyAV is imported by the commands that open a video, not by every parser
    from overlays.tracks import Track
    from overlays.video_io import VideoReader

#: Frames one `ask --batch` line may ask about (their images wait in memory for the engine).
MAX_FRAMES_PER_LINE = 256
#: ``auto``: the best this OpenCV build has (``overlays.tracking.available_trackers``).
TRACKERS = ("auto", "csrt", "template", "mil", "kcf")
#: How the command line names the fields of :class:`When` (an `ask --batch` line names its keys).
FLAGS = {
    "at": "--at",
    "frame": "--frame",
    "track": "--track",
    "every": "--every",
    "until": "--until",
    "tracker": "--tracker",
}


class WhenError(ValueError):
    """``--at``/``--frame``/``--track``/``--every``/``--until`` that do not fit together."""


@dataclass(frozen=True)
class When:
    """The moment (``at`` seconds or ``frame`` index) to ask about and, with ``every``, the
    span to ask over (to ``until`` seconds or the end), following the regions with ``track``."""

    at: float | None = None
    frame: int | None = None
    track: bool = False
    every: float | None = None
    until: float | None = None
    tracker: str = "auto"

    def check(self, names: Mapping[str, str] = FLAGS) -> None:
        """Raise :class:`WhenError` unless the fields fit together; the message calls them by
        ``names`` (the command line's flags by default)."""
        at, frame, track, every, until = (
            names[k] for k in ("at", "frame", "track", "every", "until")
        )
        if self.at is not None and self.frame is not None:
            raise WhenError(f"give {at} SECONDS or {frame} N, not both")
        if self.at is None and self.frame is None:
            raise WhenError(f"a video needs {at} SECONDS or {frame} N: the moment to ask about")
        if self.at is not None and not (math.isfinite(self.at) and self.at >= 0):
            raise WhenError(f"{at} {self.at:g} must be a time in seconds from 0")
        if self.frame is not None and self.frame < 0:
            raise WhenError(f"{frame} {self.frame} must be a frame index from 0")
        if self.every is not None and not (math.isfinite(self.every) and self.every > 0):
            raise WhenError(f"{every} {self.every:g} must be a positive number of seconds")
        if self.track and self.every is None:
            raise WhenError(f"{track} needs {every} SECONDS: how often to ask along the track")
        if self.until is not None:
            if self.every is None:
                raise WhenError(f"{until} needs {every} SECONDS (asking over a span)")
            if not math.isfinite(self.until):
                raise WhenError(f"{until} {self.until:g} must be a time in seconds")
            if self.at is not None and self.until < self.at:
                raise WhenError(f"{until} {self.until:g} s is before {at} {self.at:g} s")
        if self.tracker not in TRACKERS:
            raise WhenError(f"unknown tracker {self.tracker!r}: use one of {', '.join(TRACKERS)}")


@dataclass(frozen=True)
class FramePlan:
    """One frame to ask about: its index and time, and its prompts — or ``lost``, why there are
    none (a region the tracker lost at or before this frame)."""

    index: int
    time: float
    prompts: tuple[ov.Prompt, ...] | None
    lost: str | None = None


@dataclass(frozen=True)
class Planned:
    """The frames to ask about, and the regions' tracks when they were followed (else empty)."""

    frames: list[FramePlan]
    tracks: list[Any]  # overlays.tracks.Track, one per prompt


def start_frame(reader: VideoReader, when: When) -> int:
    """The frame ``--at``/``--frame`` names; raises ``overlays.FrameOutOfRange`` past the end."""
    if when.frame is not None:
        reader.time_of(when.frame)  # names the clip's frames when it is not one of them
        return when.frame
    assert when.at is not None
    return reader.index_at(when.at)


def plan(
    reader: VideoReader,
    prompts: Sequence[ov.Prompt],
    when: When,
    *,
    max_frames: int | None = None,
) -> Planned:
    """The frames ``when`` asks about, each with its prompts (tracked with ``when.track``).

    Raises ``overlays.FrameOutOfRange`` for a moment outside the clip and :class:`WhenError`
    for a span or tracker that cannot be used, or more than ``max_frames`` frames (checked
    before any tracking)."""
    from overlays.video_io import sample_times

    start = start_frame(reader, when)
    if when.every is None:
        return Planned([FramePlan(start, reader.time_of(start), tuple(prompts))], [])
    try:
        frames = sample_times(
            reader, start=reader.time_of(start), every=when.every, until=when.until
        )
    except ValueError as exc:
        if isinstance(exc, ov.OverlayError):
            raise
        raise WhenError(str(exc)) from None
    if max_frames is not None and len(frames) > max_frames:
        raise WhenError(
            f"{len(frames)} sampled frames is over the limit of {max_frames}: ask less often "
            "or over a shorter span"
        )
    if not when.track:
        return Planned([FramePlan(i, reader.time_of(i), tuple(prompts)) for i in frames], [])
    if not prompts:
        raise WhenError("--track needs a region to follow: give --bbox (or another prompt)")
    return _tracked(reader, prompts, start, frames, when.tracker)


def _tracked(
    reader: VideoReader, prompts: Sequence[ov.Prompt], start: int, frames: list[int], tracker: str
) -> Planned:
    from overlays.tracking import track
    from overlays.tracks import Track

    try:
        tracks = [
            track(reader, Track({start: p}), start, frames[-1], tracker=tracker) for p in prompts
        ]
    except ValueError as exc:  # a tracker this OpenCV build lacks
        if isinstance(exc, ov.OverlayError):
            raise
        raise WhenError(str(exc)) from None
    out = []
    for i in frames:
        drawn: list[ov.Prompt] = []
        lost = None
        for k, followed in enumerate(tracks):
            at = followed.prompt_at(i)
            if at is None or (followed.lost_at is not None and i >= followed.lost_at):
                lost = lost_message(reader, k, followed)
                break
            drawn.append(at[0])
        out.append(FramePlan(i, reader.time_of(i), None if lost else tuple(drawn), lost))
    return Planned(out, tracks)


def lost_message(reader: VideoReader, region: int, track: Track) -> str:
    """Why a frame after a lost track gets no answer, and what to do."""
    where = ""
    if track.lost_at is not None:
        where = f" at frame {track.lost_at} ({reader.time_of(track.lost_at):.2f} s)"
    why = f" ({track.lost_why})" if track.lost_why else ""
    return (
        f"the tracker lost region {region}{where}{why}: no answer for this frame; mark the "
        "region again with --bbox at a later --at to go on"
    )


def frame_label(video: str | Path, index: int) -> str:
    """How a frame is named in answer records: ``<video as given>#frame=<i>``."""
    return f"{video}#frame={index}"


def log_frame_turn(
    log: QALog,
    turn: NewTurn,
    reader: VideoReader,
    frame: FramePlan,
    image: Any,
    *,
    session_id: int | None = None,
) -> Recorded:
    """Record ``turn``, asked about ``frame`` (decoded as ``image``) of the reader's video."""
    info = reader.info  # hashes the file once per reader
    return log.record_turn(
        turn,
        session_id=session_id,
        image=None if session_id else frame_image(info, frame.index, image),
        video=info,
        frame_index=frame.index,
        frame_time=frame.time,
    )


__all__ = [
    "FLAGS",
    "MAX_FRAMES_PER_LINE",
    "TRACKERS",
    "FramePlan",
    "Planned",
    "When",
    "WhenError",
    "frame_label",
    "log_frame_turn",
    "lost_message",
    "plan",
    "start_frame",
]
