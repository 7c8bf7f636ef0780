"""The media of a video export, made in worker processes: burned-in clips and placed videos.

A :class:`ClipJob` decodes the planned source frames (PyAV, frame-accurate), draws each
frame's prompts exactly as on a photo (:func:`overlays.render`), scales the frame down to
``max_side`` and encodes the clip with PyAV (:func:`overlays.video_io.write_video`). A
:class:`PlaceVideoJob` copies, links or refers to the original video. Both first check that the
file still is the logged video (sha256 of its bytes, computed once per file and process); a bad
file is a reason in the summary, never an exception. A full disk (``OSError``) stops the export.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import overlays as ov
from data_gen.images import ImageMode
from overlays.errors import VideoError
from overlays.video_io import VideoReader, file_sha256, write_video

#: Constant rate factor of the clips' H.264 (FFmpeg's default; marks stay sharp at 2 fps).
CLIP_CRF = 23
#: x264's speed/size trade-off for clips: "veryfast" against the default "medium" is measured by
#: bench/bench_export_video.py (the export's frames/s); files are a little larger at one crf.
CLIP_PRESET = "veryfast"

_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) → sha256, per process
# The last video this process opened: a video's clips come in a row, and opening indexes every
# packet of the file (a long video's index is worth keeping).
_OPEN: list[tuple[tuple[str, int, int], VideoReader]] = []


class MediaRefused(Exception):
    """A video cannot be used for this sample; ``reason`` is shown in the summary."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class MediaResult:
    """What a worker made: an error, or the file's path in the dataset and how it got there."""

    error: tuple[str, str] | None = None  # (reason, detail)
    path: str | None = None
    how: str = ""
    frames: int = 0


class VideoJob:
    """What a worker is given: a clip to make, or an original video to check and place."""


@dataclass(frozen=True)
class ClipJob(VideoJob):
    """Encode ``frames`` of ``source`` with prompts drawn, at ``fps``, into ``dest``."""

    source: str
    sha256: str
    frames: tuple[int, ...]
    prompts: tuple[str, ...]  # distinct prompt sets (overlays JSON)
    which: tuple[int, ...]  # per output frame: its prompt set in ``prompts``
    fps: float
    max_side: int  # 0: the video's own size
    dest: str  # absolute path
    name: str  # path inside the dataset
    crf: int = CLIP_CRF
    threads: int = 0  # x264 threads; 0: its own choice (several); 1 when processes run in parallel


@dataclass(frozen=True)
class PlaceVideoJob(VideoJob):
    """Check the original video and copy, link or refer to it under ``root/subdir``."""

    source: str
    sha256: str
    root: str
    subdir: str
    mode: ImageMode
    name: str


def checked_video(path: str, sha256: str) -> tuple[str, int, int]:
    """Raise :class:`MediaRefused` unless ``path`` is a regular file holding the logged video;
    returns the file's identity (path, size, mtime)."""
    source = Path(path)
    try:
        st = source.stat()
    except OSError:
        raise MediaRefused("video unreadable", f"{path}: no such file") from None
    if not source.is_file():
        raise MediaRefused("video unreadable", f"{path}: not a regular file")
    key = (str(source), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        try:
            _HASHES[key] = file_sha256(source)
        except OSError as exc:
            raise MediaRefused("video unreadable", f"{path}: {exc.strerror or exc}") from None
    if _HASHES[key] != sha256:
        raise MediaRefused(
            "video changed since it was logged",
            f"{path}: its bytes are no longer the logged video's (sha256 differs)",
        )
    return key


def close_readers() -> None:
    """Close the video this process keeps open (the export ran its jobs in this process)."""
    while _OPEN:
        _OPEN.pop()[1].close()


def _reader(key: tuple[str, int, int]) -> VideoReader:
    if _OPEN and _OPEN[0][0] == key:
        return _OPEN[0][1]
    close_readers()
    reader = VideoReader(key[0])
    _OPEN.append((key, reader))
    return reader


def clip_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled down so its longer side is at most ``max_side``, both sides even."""
    w, h = size
    scale = min(1.0, max_side / max(w, h)) if max_side > 0 else 1.0
    return (max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2))


def _drawn_frames(reader: VideoReader, job: ClipJob) -> Iterator[np.ndarray]:
    parsed: dict[int, list[ov.Prompt]] = {}
    target = clip_size((reader.width, reader.height), job.max_side)
    for index, which in zip(job.frames, job.which, strict=True):
        if which not in parsed:
            parsed[which] = ov.loads(job.prompts[which])
        image = reader.frame(index).copy()  # the reader caches its arrays: draw on a copy
        ov.render(image, parsed[which], inplace=True)
        if image.size != target:
            image = image.resize(target, Image.Resampling.BILINEAR, reducing_gap=3.0)
        yield np.asarray(image)


def make_clip(job: ClipJob) -> MediaResult:
    """Decode, draw, scale and encode one clip. Never raises for a bad video or prompt."""
    try:
        reader = _reader(checked_video(job.source, job.sha256))
        if max(job.frames) >= reader.frame_count:
            raise MediaRefused(
                "video changed since it was logged",
                f"{job.source} has {reader.frame_count} frames, the clip needs frame "
                f"{max(job.frames)}",
            )
        Path(job.dest).parent.mkdir(parents=True, exist_ok=True)
        options = {"preset": CLIP_PRESET, "threads": str(job.threads)}
        write_video(job.dest, _drawn_frames(reader, job), job.fps, crf=job.crf, options=options)
    except MediaRefused as exc:
        return MediaResult(error=(exc.reason, exc.detail))
    except VideoError as exc:
        return MediaResult(error=("video unreadable", str(exc)))
    except ov.OverlayError as exc:
        return MediaResult(error=("prompt outside its frame", f"{job.source}: {exc}"))
    return MediaResult(path=job.name, how="clip", frames=len(job.frames))


def place_video(job: PlaceVideoJob) -> MediaResult:
    """Check the original video, then copy, symlink or refer to it by absolute path."""
    try:
        checked_video(job.source, job.sha256)
    except MediaRefused as exc:
        return MediaResult(error=(exc.reason, exc.detail))
    if job.mode == "absolute":
        return MediaResult(path=str(Path(job.source).resolve()), how="absolute")
    target = Path(job.root) / job.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if job.mode == "link":
        os.symlink(Path(job.source).resolve(), target)
        return MediaResult(path=job.name, how="linked")
    shutil.copyfile(job.source, target)
    return MediaResult(path=job.name, how="copied")


def media_batch(jobs: list[VideoJob | None]) -> list[MediaResult | None]:
    """The jobs of one chunk, in order (the unit a worker receives)."""
    out: list[MediaResult | None] = []
    for job in jobs:
        if job is None:
            out.append(None)
        elif isinstance(job, PlaceVideoJob):
            out.append(place_video(job))
        else:
            assert isinstance(job, ClipJob)
            out.append(make_clip(job))
    return out
