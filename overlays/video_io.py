"""Reading and writing videos with PyAV: frame-accurate access by index or by time.

A frame is an image: :meth:`VideoReader.frame` gives the same RGB ``PIL.Image`` that
:func:`overlays.load_image` gives for a photo (display rotation applied), so prompts render on it
exactly as on a photo. Opening indexes every frame's presentation timestamp without decoding
(:mod:`overlays.video_index`), which makes frame counts exact, variable frame rates right and
seeking frame-accurate; stepping to the next frame decodes on from the last one without seeking.
Writing: :func:`overlays.video_write.write_video`, re-exported here.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import stat
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import numpy as np
from PIL import Image

from overlays.errors import FrameOutOfRange, VideoTooLarge, VideoUnreadable
from overlays.image_io import MAX_PIXELS
from overlays.video_index import build_index
from overlays.video_names import VIDEO_SUFFIXES, is_video_path
from overlays.video_write import write_video

__all__ = [
    "CACHE_BYTES",
    "CACHE_FRAMES",
    "MAX_SAMPLES",
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "VideoReader",
    "file_sha256",
    "is_video_path",
    "sample_times",
    "write_video",
]

#: Decoded frames kept for stepping back and repainting: at most this many, and this many bytes
#: of YUV data (8 up to 4K, 100 MB there). Holding many slows sequential decoding down (each one
#: is a buffer the decoder cannot reuse): 145 frames held made 640×480 decoding 4× slower.
CACHE_FRAMES = 8
CACHE_BYTES = 100 << 20

# FFmpeg's threading: "AUTO" = frame and slice threads.
_THREAD_TYPE = "AUTO"

# Up to this many frames ahead, decoding on beats seeking to the keyframe between.
_DECODE_ON = 12

# Deltas between presentation timestamps that differ from the typical one by more than this share
# make a clip "variable frame rate" (timestamps rounded to a coarse time base jitter by one tick).
_VFR_TOLERANCE = 0.02


@dataclass(frozen=True)
class VideoInfo:
    """What a video is: size as displayed, rate, exact frame count, codec, content hash."""

    path: str
    width: int
    height: int
    fps: float  # average: frame_count / duration
    frame_count: int  # exact, counted from the packet index
    duration: float  # seconds, from the first frame's start to the last frame's end
    codec: str
    variable_frame_rate: bool
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoInfo:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown video info keys: {', '.join(sorted(unknown))}")
        return cls(**data)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class VideoReader:
    """Frames of one video file by index or time. Not thread-safe: one reader per thread (a
    worker that tracks or asks over time opens its own).

    ``info`` hashes the file on first use (about a second per GB); ``width``, ``height``,
    ``fps``, ``frame_count``, ``duration``, ``codec`` and ``variable_frame_rate`` are known as
    soon as the reader is open. Raises :class:`VideoUnreadable` (missing, not a regular file,
    damaged, truncated, no video stream) or :class:`VideoTooLarge`.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> None:
        self.path = Path(path)
        _check_regular(self.path)
        try:
            self._container = av.open(str(self.path), mode="r", metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise VideoUnreadable(
                f"{self.path}: not a video PyAV can read, or damaged or truncated ({_why(exc)}): "
                "give an MP4, MOV, MKV, AVI or WebM file, or re-encode it with ffmpeg"
            ) from None
        try:
            self._open_stream(max_pixels)
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self, max_pixels: int) -> None:
        if not self._container.streams.video:
            audio = " (it holds audio only)" if self._container.streams.audio else ""
            raise VideoUnreadable(f"{self.path}: has no video stream{audio}: give a video file")
        self._stream = stream = self._container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg has no decoder for this codec
            raise VideoUnreadable(
                f"{self.path}: its video codec cannot be decoded here: re-encode it as H.264"
            )
        self.codec = ctx.name
        if not ctx.width or not ctx.height:
            raise VideoUnreadable(
                f"{self.path}: the video stream has no frame size (damaged header): re-encode it"
            )
        if ctx.width * ctx.height > max_pixels:
            raise VideoTooLarge(
                f"{self.path}: frames of {ctx.width}×{ctx.height} = {ctx.width * ctx.height:,} "
                f"pixels are over the limit of {max_pixels:,}: downscale the video"
            )
        stream.thread_type = _THREAD_TYPE
        self._tb = stream.time_base or Fraction(1, 90000)
        self._build_index()
        self._cache: OrderedDict[int, av.VideoFrame] = OrderedDict()
        frame_bytes = ctx.width * ctx.height * 3 // 2
        self._cache_size = max(2, min(CACHE_FRAMES, CACHE_BYTES // frame_bytes))
        self._rgb: tuple[int, np.ndarray] | None = None
        self._decoder: Iterator[av.VideoFrame] | None = None
        self._pos = -1  # index of the last frame the decoder gave, -1 before any
        self._next = 0  # the index the next decoded frame has, where frames are counted
        self.seeks = 0  # how many times the reader seeked (tests and benches watch it)
        self._sha256: str | None = None
        first = self._decoded(0)  # proves the codec decodes, and gives the display rotation
        self._rotation = int(first.rotation or 0) % 360
        w, h = ctx.width, ctx.height
        self.width, self.height = (h, w) if self._rotation in (90, 270) else (w, h)

    def _build_index(self) -> None:
        """Every frame's presentation timestamp (see overlays.video_index): no decoding."""
        index = build_index(self._container, self._stream, self.path)
        self._positional = index.positional
        stamps = self._pts = index.pts
        self._index_of_pts = {p: i for i, p in enumerate(stamps)}
        self._key_pts = index.keys or [stamps[0]]
        deltas = np.diff(np.asarray(stamps, dtype=np.int64))
        typical = float(np.median(deltas)) if deltas.size else 0.0
        last_duration = index.last_duration
        if last_duration <= 0:
            rate = self._stream.guessed_rate or self._stream.average_rate or 30
            last_duration = round(typical) if typical > 0 else max(1, round(1 / (rate * self._tb)))
        self._end = stamps[-1] + last_duration  # where the last frame stops being shown
        self.frame_count = len(stamps)
        self.duration = float((self._end - stamps[0]) * self._tb)
        self.fps = self.frame_count / self.duration if self.duration > 0 else 0.0
        tolerance = max(1.0, _VFR_TOLERANCE * typical)
        self.variable_frame_rate = bool(
            deltas.size and np.abs(deltas.astype(np.float64) - typical).max() > tolerance
        )

    # -- what the video is -------------------------------------------------------------------

    @property
    def info(self) -> VideoInfo:
        """The video's :class:`VideoInfo`; hashes the file on first use."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return VideoInfo(
            path=str(self.path),
            width=self.width,
            height=self.height,
            fps=self.fps,
            frame_count=self.frame_count,
            duration=self.duration,
            codec=self.codec,
            variable_frame_rate=self.variable_frame_rate,
            sha256=self._sha256,
        )

    def time_of(self, index: int) -> float:
        """Presentation time of frame ``index`` in seconds from the first frame."""
        self._check_index(index)
        return float((self._pts[index] - self._pts[0]) * self._tb)

    def index_at(self, t: float) -> int:
        """The frame shown at time ``t`` (seconds from the first frame), by timestamps."""
        if not math.isfinite(t) or t < 0 or t > self.duration + 1e-9:
            raise FrameOutOfRange(
                f"time {t:g} s is outside the video ({self.path.name}: {self.duration:.3f} s, "
                f"frames 0–{self.frame_count - 1}): give a time from 0 to {self.duration:.3f}"
            )
        target = self._pts[0] + t / self._tb
        return max(0, bisect.bisect_right(self._pts, target + 1e-6) - 1)

    def _check_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"frame index must be an int, got {index!r}")
        if not 0 <= index < self.frame_count:
            raise FrameOutOfRange(
                f"frame {index} is outside the video ({self.path.name}: {self.frame_count} "
                f"frames, 0–{self.frame_count - 1}, {self.duration:.3f} s)"
            )

    # -- frames ------------------------------------------------------------------------------

    def frame(self, index: int) -> Image.Image:
        """Frame ``index`` as an RGB image, display rotation applied."""
        return Image.fromarray(self.frame_array(index))

    def frame_array(self, index: int) -> np.ndarray:
        """Frame ``index`` as an H×W×3 uint8 RGB array (do not modify it: it is cached)."""
        self._check_index(index)
        if self._rgb is not None and self._rgb[0] == index:
            return self._rgb[1]
        rgb: np.ndarray = self._decoded(index).to_ndarray(format="rgb24")
        if self._rotation:
            # The display matrix turns counter-clockwise by `rotation` degrees.
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self._rotation // 90))
        rgb.flags.writeable = False
        self._rgb = (index, rgb)
        return rgb

    def frames(self, start: int, stop: int, step: int = 1) -> Iterator[tuple[int, Image.Image]]:
        """``(index, image)`` for ``range(start, stop, step)``, decoded in one forward pass
        (a seek only where it skips decoding: a keyframe lies between two wanted frames)."""
        if step == 0:
            raise ValueError("step must not be 0")
        for index in range(start, stop, step):
            yield index, self.frame(index)

    def _decoded(self, index: int) -> av.VideoFrame:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        target = self._pts[index]
        if not self._decodes_on_to(target):
            self._seek(target)
        earlier = bisect.bisect_right(self._key_pts, target) - 1
        while True:
            # From the very start, a frame the decoder never shows gives way to the next shown.
            found = self._decode_until(index, from_start=earlier < 0)
            if found is not None:
                return found
            # The demuxer landed after the wanted frame: seek one keyframe further back.
            earlier -= 1
            self._seek(self._key_pts[earlier] if earlier >= 0 else None)

    def _decodes_on_to(self, target: int) -> bool:
        """Whether to decode on from the current position rather than seek: ``target`` is
        ahead, and near (stepping, playing) or with no keyframe between (a seek skips nothing)."""
        if self._decoder is None or self._pos < 0 or target <= self._pts[self._pos]:
            return False
        if self._index_of_pts.get(target, self.frame_count) - self._pos <= _DECODE_ON:
            return True
        key = self._key_pts[bisect.bisect_right(self._key_pts, target) - 1]
        return key <= self._pts[self._pos]

    def _seek(self, pts: int | None) -> None:
        self.seeks += 1
        if pts is None:
            self._container.seek(0, backward=True, any_frame=False)
            self._next = 0
        else:
            key = self._key_pts[max(0, bisect.bisect_right(self._key_pts, pts) - 1)]
            self._container.seek(key, stream=self._stream, backward=True, any_frame=False)
            # Where frames are counted, not stamped: the keyframe landed on is shown next.
            self._next = self._index_of_pts.get(key, 0)
        self._decoder = self._container.decode(self._stream)
        self._pos = -1

    def _decode_until(self, index: int, *, from_start: bool = False) -> av.VideoFrame | None:
        """Decode forward to frame ``index``; None if the first frame decoded is already past it
        (unless decoding ``from_start``). A frame the decoder never gives (damaged, or cut by an
        edit list) is replaced by the one shown before it."""
        assert self._decoder is not None
        previous: av.VideoFrame | None = None
        first = True
        while True:
            try:
                frame = next(self._decoder, None)
            except av.error.FFmpegError as exc:
                raise VideoUnreadable(
                    f"{self.path}: frame {index} cannot be decoded ({_why(exc)}): "
                    "the file is damaged; re-encode it"
                ) from None
            if frame is None:  # end of the stream
                self._decoder = None
                if previous is not None:
                    return previous
                raise VideoUnreadable(
                    f"{self.path}: frame {index} is in the index but not in the data: "
                    "the file is truncated"
                )
            at = self._frame_index(frame)
            if first and at > index and not from_start:
                return None
            first = False
            self._pos = at
            self._remember(at, frame)
            if at == index:
                return frame
            if at > index:
                return previous or frame
            previous = frame

    def _frame_index(self, frame: av.VideoFrame) -> int:
        if self._positional:
            self._next += 1
            return min(self._next - 1, self.frame_count - 1)
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            return min(self._pos + 1, self.frame_count - 1)
        found = self._index_of_pts.get(pts)
        if found is None:
            found = max(0, bisect.bisect_right(self._pts, pts) - 1)
        return found

    def _remember(self, index: int, frame: av.VideoFrame) -> None:
        self._cache[index] = frame
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the file and the decoder (idempotent)."""
        self._decoder = None
        if hasattr(self, "_cache"):
            self._cache.clear()
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


#: Most sample times one "ask every N seconds" run may ask for (a typo like --every 0.0001).
MAX_SAMPLES = 100_000


def sample_times(
    source: VideoInfo | VideoReader, *, start: float, every: float, until: float | None = None
) -> list[int]:
    """Frame indices for "ask every ``every`` seconds" from ``start`` to ``until`` (default: the
    end), inside the clip, without repeats. Given a reader, each time is looked up by the frames'
    timestamps (exact for variable frame rates); given a :class:`VideoInfo`, by its average
    rate."""
    duration, frame_count = source.duration, source.frame_count
    if not math.isfinite(every) or every <= 0:
        raise ValueError(f"--every {every:g} must be a positive number of seconds")
    end = duration if until is None else min(until, duration)
    if not math.isfinite(start) or start < 0 or start > duration:
        raise FrameOutOfRange(
            f"start time {start:g} s is outside the video ({duration:.3f} s, "
            f"frames 0–{frame_count - 1})"
        )
    if end < start:
        raise ValueError(f"--until {end:g} s is before the start {start:g} s")
    steps = math.floor((end - start) / every + 1e-9)
    if steps >= MAX_SAMPLES:
        raise ValueError(
            f"--every {every:g} s asks {steps + 1:,} times over {end - start:g} s, more than "
            f"{MAX_SAMPLES:,}: ask less often"
        )
    indices: list[int] = []
    for k in range(steps + 1):
        t = min(start + k * every, duration)
        if isinstance(source, VideoReader):
            index = source.index_at(t)
        else:
            index = min(frame_count - 1, math.floor(t * source.fps + 1e-6))
        if not indices or indices[-1] != index:
            indices.append(index)
    return indices


def _check_regular(p: Path) -> None:
    """Refuse what FFmpeg would block on or misread: a FIFO, a device, a folder, nothing."""
    try:
        mode = os.stat(p).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise VideoUnreadable(f"{p}: no such file") from None
    except OSError as exc:
        raise VideoUnreadable(f"{p}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise VideoUnreadable(f"{str(p)!a}: not a valid file path ({exc})") from None
    if stat.S_ISDIR(mode):
        raise VideoUnreadable(f"{p}: is a folder, not a video file")
    if not stat.S_ISREG(mode):
        raise VideoUnreadable(
            f"{p}: not a regular file (a pipe, socket or device): give a video file"
        )
    if not os.access(p, os.R_OK):
        raise VideoUnreadable(f"{p}: cannot be read (permission denied)")


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().rstrip(".") or type(exc).__name__
