"""The frame index of a video: every shown frame's presentation timestamp, and the keyframes'.

Two ways to build it, neither decodes: demuxing every packet (any container; reads the whole
file), or, for MP4/MOV, the sample table FFmpeg read from the file's header (reads a few packets
only: a 10-minute clip opens in milliseconds even when it is not in the disk cache). The table
gives decode timestamps; presentation timestamps follow from them when frames are not reordered
(no B-frames), or when the frame rate is constant. Either way, packets demuxed at the start and
near the end must land on the index, else the packets are demuxed after all.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np

from overlays.errors import VideoUnreadable

# Packets demuxed at each end of the clip to check an index built from the MP4 sample table.
_CHECKED_PACKETS = 24


@dataclass(frozen=True)
class FrameIndex:
    """Presentation timestamps (stream time base) of the frames shown, sorted; of keyframes."""

    pts: list[int]
    keys: list[int]
    last_duration: int  # how long the last frame is shown (0: unknown)
    # AVI stamps packets in decode order only: the n-th frame shown is the n-th stamp, and a
    # decoded frame is known by counting from the keyframe decoding started at, not by its pts.
    positional: bool = False


def build_index(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> FrameIndex:
    """The index from the MP4 sample table when it can be trusted, else from every packet."""
    fast = _from_sample_table(container, stream)
    return fast if fast is not None else _from_packets(container, stream, path)


def _from_packets(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> FrameIndex:
    with contextlib.suppress(av.error.FFmpegError):  # back to the start after a look at the table
        container.seek(0, backward=True, any_frame=False)
    stamps: list[int] = []
    keys: list[int] = []
    durations: dict[int, int] = {}
    try:
        for packet in container.demux(stream):
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None or packet.size == 0 or packet.is_discard:
                continue  # the end-of-stream marker; frames an edit list cuts away
            stamps.append(pts)
            if packet.is_keyframe:
                keys.append(pts)
            durations[pts] = packet.duration or 0
    except av.error.FFmpegError as exc:
        why = (getattr(exc, "strerror", None) or str(exc)).strip().rstrip(".")
        raise VideoUnreadable(
            f"{path}: the video data is damaged after {len(stamps)} frames ({why}): "
            "re-encode or re-download it"
        ) from None
    if not stamps:
        raise VideoUnreadable(f"{path}: the video stream holds no frames")
    stamps = sorted(set(stamps))
    # The last frame shown, not the last demuxed (B-frames come out of order).
    positional = "avi" in container.format.name.split(",")
    return FrameIndex(stamps, sorted(set(keys)), durations[stamps[-1]], positional)


def _from_sample_table(
    container: av.container.InputContainer, stream: av.VideoStream
) -> FrameIndex | None:
    if "mp4" not in container.format.name and "mov" not in container.format.name:
        return None
    rows = [(e.timestamp, e.is_keyframe, e.is_discard) for e in stream.index_entries]
    if len(rows) < 2:
        return None
    dts = np.array([r[0] for r in rows], dtype=np.int64)
    shown = np.array([not r[2] for r in rows])
    key = np.array([r[1] for r in rows]) & shown
    head = _demux(container, stream, None)
    firsts = [p for p in head if p.key and p.dts is not None]
    if not firsts:
        return None
    offset = firsts[0].pts - firsts[0].dts  # type: ignore[operator]
    deltas = np.diff(dts)
    if not stream.codec_context.has_b_frames:
        pts = dts[shown] + offset  # frames are not reordered: pts and dts differ by a constant
        last = int(deltas[-1])
    else:
        step = int(deltas[0])
        if step <= 0 or not np.all(deltas == step):
            return None  # reordered frames at a varying rate: only the packets tell
        # A constant rate: the frames sit on a grid from the first presented one, and an edit
        # list cuts the earliest.
        grid = min(p.pts for p in head) + step * np.arange(len(rows), dtype=np.int64)
        pts = grid[len(rows) - int(shown.sum()) :]
        last = step
    stamps = [int(p) for p in pts]
    keys = sorted({int(k) for k in dts[key] + offset}) or stamps[:1]
    tail = _demux(container, stream, stamps[max(0, len(stamps) - _CHECKED_PACKETS)])
    known = set(stamps)
    if any(p.pts not in known for p in head + tail if not p.discard):
        return None
    return FrameIndex(stamps, keys, last)


@dataclass(frozen=True)
class _Packet:
    pts: int
    dts: int | None
    key: bool
    discard: bool


def _demux(
    container: av.container.InputContainer, stream: av.VideoStream, near: int | None
) -> list[_Packet]:
    """Up to _CHECKED_PACKETS packets from the start, or from the keyframe before ``near``."""
    try:
        if near is None:
            container.seek(0, backward=True, any_frame=False)
        else:
            container.seek(near, stream=stream, backward=True, any_frame=False)
        out: list[_Packet] = []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            out.append(_Packet(packet.pts, packet.dts, packet.is_keyframe, packet.is_discard))
            if len(out) == _CHECKED_PACKETS:
                break
        return out
    except av.error.FFmpegError:
        return []
