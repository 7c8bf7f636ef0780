"""Prompts through time: a region's keyframes, the frames a tracker filled, and interpolation.

A :class:`Track` is immutable data (every edit returns a new one, so undo keeps the old).
Frame ``i`` shows the keyframe drawn there, else the tracker's box there, else the prompt
interpolated between the keyframes around it; outside the keyframes and the tracked frames the
region is not shown (``prompt_at`` gives None), so nothing is claimed that nobody drew or tracked.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import numpy as np

from overlays.errors import InvalidPrompt, InvalidTrack
from overlays.keys import expect_keys
from overlays.prompts import (
    Arrow,
    Box,
    Contour,
    Ellipse,
    Mask,
    Point,
    Prompt,
    Pt,
    Rectangle,
    Region,
    Scribble,
    Triangle,
)
from overlays.serialize import prompt_from_dict, prompt_to_dict

FrameSource = Literal["key", "interpolated", "tracked"]
TRACK_FORMAT = "vipstudio.track/1"

Ring = tuple[Pt, ...]
P = TypeVar("P", bound=Prompt)


def _frames(value: Mapping[int, Prompt], what: str) -> Mapping[int, Prompt]:
    if not isinstance(value, Mapping):
        raise InvalidTrack(f"{what} must map frame indices to prompts, got {value!r}")
    for index, prompt in value.items():
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
            raise InvalidTrack(f"{what}: frame index {index!r} must be an integer ≥ 0")
        if not hasattr(prompt, "kind") or not dataclasses.is_dataclass(prompt):
            raise InvalidTrack(f"{what}: frame {index} holds {prompt!r}, not a prompt")
    return MappingProxyType({int(i): value[i] for i in sorted(value)})


@dataclass(frozen=True)
class Track:
    """One region through a clip: keyframes (drawn), tracked frames, where tracking lost it."""

    keyframes: Mapping[int, Prompt] = field(default_factory=dict)
    tracked: Mapping[int, Prompt] = field(default_factory=dict)
    lost_at: int | None = None
    lost_why: str | None = None  # how the tracker lost it ("it left the frame"), for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyframes", _frames(self.keyframes, "keyframes"))
        object.__setattr__(self, "tracked", _frames(self.tracked, "tracked frames"))
        kinds = {p.kind for p in (*self.keyframes.values(), *self.tracked.values())}
        if len(kinds) > 1:
            raise InvalidTrack(
                f"a track holds one kind of prompt, got {', '.join(sorted(kinds))}: "
                "start a new region for another kind"
            )
        if self.lost_at is not None and (
            isinstance(self.lost_at, bool) or not isinstance(self.lost_at, int) or self.lost_at < 0
        ):
            raise InvalidTrack(f"lost_at {self.lost_at!r} must be a frame index or None")
        if self.lost_why is not None and not isinstance(self.lost_why, str):
            raise InvalidTrack(f"lost_why {self.lost_why!r} must be a string or None")

    @property
    def kind(self) -> str | None:
        """The kind of prompt this track holds (None while it is empty)."""
        for prompt in (*self.keyframes.values(), *self.tracked.values()):
            return prompt.kind
        return None

    def __bool__(self) -> bool:
        return bool(self.keyframes or self.tracked)

    # -- edits (each returns a new Track) ----------------------------------------------------

    def with_keyframe(self, index: int, prompt: Prompt) -> Track:
        """``prompt`` drawn (or a tracked box corrected) at frame ``index``. A keyframe at the
        frame where tracking lost the object clears ``lost_at``: the person found it again."""
        tracked = {i: p for i, p in self.tracked.items() if i != index}
        if self.lost_at == index:
            return Track({**self.keyframes, index: prompt}, tracked)
        return Track({**self.keyframes, index: prompt}, tracked, self.lost_at, self.lost_why)

    def without_keyframe(self, index: int) -> Track:
        """The track without the keyframe at ``index`` (unchanged if there is none)."""
        keys = {i: p for i, p in self.keyframes.items() if i != index}
        return Track(keys, self.tracked, self.lost_at, self.lost_why)

    def with_tracked(
        self, frames: Mapping[int, Prompt], lost_at: int | None = None, lost_why: str | None = None
    ) -> Track:
        """Frames a tracker filled (replacing earlier tracked ones at the same frames; keyframes
        are kept). ``lost_at``: where this run lost the object (and why), else the track's
        earlier loss is kept."""
        tracked = {**self.tracked, **{i: p for i, p in frames.items() if i not in self.keyframes}}
        if lost_at is None:
            return Track(self.keyframes, tracked, self.lost_at, self.lost_why)
        return Track(self.keyframes, tracked, lost_at, lost_why)

    def without_tracked(self, span: tuple[int, int] | None = None) -> Track:
        """The track without its tracked frames (and loss) within ``span`` (first, last frame,
        inclusive), or without any: to track that stretch again."""
        if span is None:
            return Track(self.keyframes)
        lo, hi = sorted(span)
        tracked = {i: p for i, p in self.tracked.items() if not lo <= i <= hi}
        if self.lost_at is not None and lo <= self.lost_at <= hi:
            return Track(self.keyframes, tracked)
        return Track(self.keyframes, tracked, self.lost_at, self.lost_why)

    # -- reading -----------------------------------------------------------------------------

    def prompt_at(self, index: int) -> tuple[Prompt, FrameSource] | None:
        """The prompt shown at frame ``index`` and where it comes from, or None."""
        if index in self.keyframes:
            return self.keyframes[index], "key"
        if index in self.tracked:
            return self.tracked[index], "tracked"
        keys = list(self.keyframes)  # sorted
        at = bisect.bisect_left(keys, index)
        if at == 0 or at == len(keys):
            return None
        a, b = keys[at - 1], keys[at]
        w = (index - a) / (b - a)
        return interpolate(self.keyframes[a], self.keyframes[b], w), "interpolated"

    def source_at(self, index: int) -> FrameSource | None:
        """Where frame ``index``'s prompt comes from, without building it (for timelines)."""
        if index in self.keyframes:
            return "key"
        if index in self.tracked:
            return "tracked"
        keys = list(self.keyframes)
        if keys and keys[0] < index < keys[-1]:
            return "interpolated"
        return None

    def span(self) -> tuple[int, int]:
        """The first and last frame where the region is shown (inclusive)."""
        frames = [*self.keyframes, *self.tracked]
        if not frames:
            raise InvalidTrack("the track is empty: draw the region on a frame first")
        return min(frames), max(frames)

    # -- JSON --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form: ``{"format", "keyframes", "tracked", "lost_at"}`` (and
        ``"lost_why"`` when known)."""
        out: dict[str, Any] = {
            "format": TRACK_FORMAT,
            "keyframes": {str(i): prompt_to_dict(p) for i, p in self.keyframes.items()},
            "tracked": {str(i): prompt_to_dict(p) for i, p in self.tracked.items()},
            "lost_at": self.lost_at,
        }
        if self.lost_why is not None:
            out["lost_why"] = self.lost_why
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Track:
        """The inverse of :meth:`to_dict`; raises :class:`InvalidTrack` naming the problem."""
        expect_keys(
            data,
            {"format", "keyframes", "tracked", "lost_at", "lost_why"},
            "track",
            required={"format", "keyframes"},
            error=InvalidTrack,
        )
        if data["format"] != TRACK_FORMAT:
            raise InvalidTrack(
                f"track format {data['format']!r} is not supported: this version reads "
                f"{TRACK_FORMAT!r}; upgrade vip-studio to read newer files"
            )
        return cls(
            _frames_from(data["keyframes"], "keyframes"),
            _frames_from(data.get("tracked") or {}, "tracked"),
            data.get("lost_at"),
            data.get("lost_why"),
        )


def _frames_from(data: Any, what: str) -> dict[int, Prompt]:
    if not isinstance(data, dict):
        raise InvalidTrack(f"track {what} must be a JSON object, got {type(data).__name__}")
    out: dict[int, Prompt] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.isdigit():
            raise InvalidTrack(f"track {what}: {key!r} is not a frame index")
        try:
            out[int(key)] = prompt_from_dict(value)
        except InvalidPrompt as exc:
            raise InvalidTrack(f"track {what} frame {key}: {exc}") from None
    return out


# --------------------------------------------------------------------------- interpolation


def interpolate(a: Prompt, b: Prompt, w: float) -> Prompt:
    """The prompt a share ``w`` (0..1) of the way from ``a`` to ``b``; style and label of ``a``.

    Boxes, points, arrows and triangles move coordinate by coordinate; outlines (polygons,
    contours, masks, scribbles) vertex by vertex, resampled along the outline to the larger
    vertex count when the counts differ. Where the result would not be a valid prompt (an outline
    that would cross itself), the nearer keyframe is held.
    """
    if a.kind != b.kind:
        raise InvalidPrompt(f"cannot interpolate a {a.kind} into a {b.kind}: use one kind")
    if not 0 <= w <= 1:
        raise ValueError(f"interpolation weight {w:g} must be within 0..1")
    if w == 0:
        return a
    if w == 1:
        return dataclasses.replace(b, style=a.style, label=a.label, region=_region(a, b, 1))
    try:
        return _interpolate(a, b, w)
    except InvalidPrompt:
        return a if w < 0.5 else dataclasses.replace(b, style=a.style, label=a.label)


def _interpolate(a: Prompt, b: Prompt, w: float) -> Prompt:
    region = _region(a, b, w)
    if isinstance(a, Rectangle | Ellipse):
        assert isinstance(b, Rectangle | Ellipse)
        return dataclasses.replace(a, box=_lerp_box(a.box, b.box, w), region=region)
    if isinstance(a, Point):
        assert isinstance(b, Point)
        return dataclasses.replace(
            a,
            center=_lerp_pt(a.center, b.center, w),
            radius=_lerp(a.radius, b.radius, w),
            aspect=_lerp(a.aspect, b.aspect, w),
            region=region,
        )
    if isinstance(a, Triangle):
        assert isinstance(b, Triangle)
        pts = tuple(_lerp_pt(p, q, w) for p, q in zip(a.points, b.points, strict=True))
        return dataclasses.replace(a, points=pts, region=region)  # type: ignore[arg-type]
    if isinstance(a, Arrow):
        assert isinstance(b, Arrow)
        bend = None
        if a.bend is not None:
            b_bend = b.bend if b.bend is not None else _lerp_pt(b.tail, b.tip, 0.5)
            bend = _lerp_pt(a.bend, b_bend, w)
        head = a.head if a.head is None or b.head is None else _lerp(a.head, b.head, w)
        return dataclasses.replace(
            a,
            tail=_lerp_pt(a.tail, b.tail, w),
            tip=_lerp_pt(a.tip, b.tip, w),
            bend=bend,
            head=head,
            region=region,
        )
    if isinstance(a, Scribble):
        assert isinstance(b, Scribble)
        return dataclasses.replace(
            a, points=_lerp_line(a.points, b.points, w, closed=False), region=region
        )
    assert isinstance(a, Mask | Contour) and isinstance(b, Mask | Contour)
    return dataclasses.replace(a, polygons=_lerp_rings(a.polygons, b.polygons, w), region=region)


def _region(a: Prompt, b: Prompt, w: float) -> Region | None:
    """An explicit region moves as the box between the two explicit regions (polygons with it,
    translated and scaled); without one on ``a`` the region stays derived from the shape."""
    if a.region is None:
        return None
    target = b.region.box if b.region is not None else a.region.box
    box = _lerp_box(a.region.box, target, w)
    return _moved_region(a.region, a.region.box, box)


def _lerp(x: float, y: float, w: float) -> float:
    return x + (y - x) * w


def _lerp_pt(p: Pt, q: Pt, w: float) -> Pt:
    return (_lerp(p[0], q[0], w), _lerp(p[1], q[1], w))


def _lerp_box(p: Box, q: Box, w: float) -> Box:
    return (_lerp(p[0], q[0], w), _lerp(p[1], q[1], w), _lerp(p[2], q[2], w), _lerp(p[3], q[3], w))


def _lerp_rings(a: Sequence[Ring], b: Sequence[Ring], w: float) -> tuple[Ring, ...]:
    if len(a) != len(b):
        raise InvalidPrompt("different numbers of polygons")  # caught: the nearer key is held
    return tuple(_lerp_line(p, q, w, closed=True) for p, q in zip(a, b, strict=True))


def _lerp_line(p: Sequence[Pt], q: Sequence[Pt], w: float, *, closed: bool) -> tuple[Pt, ...]:
    pa = np.asarray(p, dtype=np.float64)
    qa = np.asarray(q, dtype=np.float64)
    if len(pa) != len(qa):
        n = max(len(pa), len(qa))
        pa, qa = _resample(pa, n, closed=closed), _resample(qa, n, closed=closed)
        if closed:
            qa = _aligned(pa, qa)
    out = pa + (qa - pa) * w
    return tuple((float(x), float(y)) for x, y in out)


def _resample(points: np.ndarray, n: int, *, closed: bool) -> np.ndarray:
    """``n`` points evenly spaced along a polyline (a closed ring when ``closed``)."""
    if len(points) == n:
        return points
    path = np.vstack([points, points[:1]]) if closed else points
    seg = np.hypot(*np.diff(path, axis=0).T)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    total = dist[-1]
    if total <= 0:
        return np.repeat(points[:1], n, axis=0)
    at = np.linspace(0.0, total, n, endpoint=not closed)
    return np.column_stack([np.interp(at, dist, path[:, 0]), np.interp(at, dist, path[:, 1])])


def _aligned(ref: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """``ring`` turned the same way as ``ref`` and started at its vertex nearest ``ref[0]``, so
    that vertex-by-vertex interpolation does not twist the outline."""
    if _signed_area(ring) * _signed_area(ref) < 0:
        ring = ring[::-1]
    start = int(np.argmin(np.hypot(*(ring - ref[0]).T)))
    return np.roll(ring, -start, axis=0)


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


# --------------------------------------------------------------------------- moving by a box


def moved(prompt: P, old: Box, new: Box) -> P:
    """``prompt`` translated and scaled as box ``old`` becomes box ``new`` (a tracker's step).
    Point radii, arrow heads and line widths keep their size: they are marks, not the object."""
    sx = (new[2] - new[0]) / (old[2] - old[0])
    sy = (new[3] - new[1]) / (old[3] - old[1])
    if not (math.isfinite(sx) and math.isfinite(sy)) or sx <= 0 or sy <= 0:
        raise InvalidPrompt(f"cannot move a prompt from box {old} to box {new}")

    def pt(p: Pt) -> Pt:
        return (new[0] + (p[0] - old[0]) * sx, new[1] + (p[1] - old[1]) * sy)

    def ring(r: Sequence[Pt]) -> Ring:
        return tuple(pt(p) for p in r)

    region = _moved_region(prompt.region, old, new) if prompt.region is not None else None
    result: Prompt
    if isinstance(prompt, Rectangle | Ellipse):
        x1, y1 = pt(prompt.box[:2])
        x2, y2 = pt(prompt.box[2:])
        result = dataclasses.replace(prompt, box=(x1, y1, x2, y2), region=region)
    elif isinstance(prompt, Point):
        result = dataclasses.replace(prompt, center=pt(prompt.center), region=region)
    elif isinstance(prompt, Triangle):
        result = dataclasses.replace(prompt, points=ring(prompt.points), region=region)  # type: ignore[arg-type]
    elif isinstance(prompt, Arrow):
        bend = pt(prompt.bend) if prompt.bend is not None else None
        result = dataclasses.replace(
            prompt, tail=pt(prompt.tail), tip=pt(prompt.tip), bend=bend, region=region
        )
    elif isinstance(prompt, Scribble):
        result = dataclasses.replace(prompt, points=ring(prompt.points), region=region)
    else:
        rings = tuple(ring(r) for r in prompt.polygons)
        result = dataclasses.replace(prompt, polygons=rings, region=region)
    return result


def _moved_region(region: Region, old: Box, new: Box) -> Region:
    sx = (new[2] - new[0]) / (old[2] - old[0])
    sy = (new[3] - new[1]) / (old[3] - old[1])

    def pt(p: Pt) -> Pt:
        return (new[0] + (p[0] - old[0]) * sx, new[1] + (p[1] - old[1]) * sy)

    x1, y1 = pt(region.box[:2])
    x2, y2 = pt(region.box[2:])
    polygons = tuple(tuple(pt(p) for p in r) for r in region.polygons) if region.polygons else None
    return Region((x1, y1, x2, y2), polygons)
