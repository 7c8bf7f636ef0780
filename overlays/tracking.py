"""Following a region through a clip with a single-object tracker.

The tracker (OpenCV's CSRT/KCF with the contrib build, MIL, or our template matcher) follows the
region's box; the prompt moves with it (translated and scaled by the box,
:func:`overlays.tracks.moved`). A tracker that loses its object rarely says so (MIL keeps
returning a box on the background), so every step is checked: the tracker's own failure, a box
that collapses or balloons, a jump longer than the box, a box leaving the frame, colours that are
no longer the object's, and (for OpenCV's trackers) a box that no longer matches the object's
template. The first failed check ends the run and is recorded as the track's ``lost_at`` with
``lost_why``: a track never drifts silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from overlays.errors import InvalidPrompt, InvalidTrack
from overlays.prompts import Arrow, Box, Point, Prompt, Rectangle
from overlays.template_tracker import TemplateTracker
from overlays.tracks import Track, moved
from overlays.video_io import VideoReader

#: OpenCV trackers by name, best first. CSRT and KCF come with opencv-contrib only; MIL is in
#: every wheel; "template" is ours (overlays.template_tracker) and needs only OpenCV's core.
_OPENCV = {"csrt": "TrackerCSRT_create", "mil": "TrackerMIL_create", "kcf": "TrackerKCF_create"}
_PREFERENCE = ("csrt", "template", "mil", "kcf")

#: Frames are tracked at most this large (longer side, pixels): trackers cost grows with pixels
#: and a region worth asking about is still tens of pixels across at this size.
TRACK_SIDE = 640

# Loss checks, tuned on generated clips (tests/overlays/test_tracking.py, bench/bench_video.py).
_MIN_SIDE = 4.0  # pixels at tracking size: a box thinner than this has collapsed
_AREA_RANGE = (0.2, 5.0)  # box area against the seed box's
_MAX_JUMP = 1.0  # centre moves per frame, in box diagonals
_MIN_INSIDE = 0.5  # share of the box that must stay inside the frame
_MAX_LOOK = 0.45  # Bhattacharyya distance of the box's colours from the object's (0 same, 1 unlike)
_MIN_MATCH = 0.3  # normalised correlation of the box with the object's (adapting) template
_BACKWARD_CHUNK = 24  # frames decoded forward at a time when tracking backward


def available_trackers() -> list[str]:
    """The trackers this OpenCV build offers, best first ("template" and "mil" always)."""
    legacy = getattr(cv2, "legacy", None)
    return [
        name
        for name in _PREFERENCE
        if name == "template" or hasattr(cv2, _OPENCV[name]) or hasattr(legacy, _OPENCV[name])
    ]


def _resolve(name: str) -> str:
    available = available_trackers()
    if name == "auto":
        return available[0]
    if name not in available:
        extra = " (install opencv-contrib-python-headless instead of opencv-python-headless)"
        raise ValueError(
            f"tracker {name!r} is not available here: use one of "
            f"{', '.join(['auto', *available])}" + (extra if name in _OPENCV else "")
        )
    return name


def _create(name: str) -> Any:
    if name == "template":
        return TemplateTracker()
    cv2.setRNGSeed(0)  # MIL samples at random: the same clip tracks the same way every time
    legacy = getattr(cv2, "legacy", None)  # absent from the plain wheel
    factory = getattr(cv2, _OPENCV[name], None) or getattr(legacy, _OPENCV[name])
    return factory()


def track(
    reader: VideoReader,
    track: Track,
    start: int,
    stop: int,
    *,
    tracker: str = "auto",
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Track:
    """``track`` with frames ``start``..``stop`` (inclusive) filled by following its prompt at
    ``start``: forward if ``stop > start``, else backward. A keyframe met on the way restarts the
    tracker from it (the person's drawing wins). The run ends early where the object is lost
    (``lost_at``), or when ``cancel()`` turns true (the frames so far are kept). What an earlier
    run tracked from ``start`` to ``stop`` is replaced (to where a cancelled run got). ``progress``
    gets each frame index as it is done."""
    shown = track.prompt_at(start)
    if shown is None:
        raise InvalidTrack(
            f"the region is not shown at frame {start}: draw it there (a keyframe) first"
        )
    last = reader.frame_count - 1
    stop = max(0, min(stop, last))
    if not 0 <= start <= last:
        reader.time_of(start)  # raises FrameOutOfRange naming the clip's length
    step = 1 if stop >= start else -1
    scale = min(1.0, TRACK_SIDE / max(reader.width, reader.height))
    follower = _Follower(_resolve(tracker), scale, reader.width, reader.height)
    frames = _frames(reader, start, stop, step, scale)
    handled, first = next(frames)
    cleared_to = stop
    seed, seed_box = shown[0], _target_box(shown[0], reader.width, reader.height)
    follower.start(first, seed_box)
    filled: dict[int, Prompt] = {}
    lost_at: int | None = None
    for index, image in frames:
        if cancel is not None and cancel():
            cleared_to = handled  # what was not reached stays as it was
            break
        if index in track.keyframes:
            seed = track.keyframes[index]
            seed_box = _target_box(seed, reader.width, reader.height)
            follower.start(image, seed_box)
        else:
            box = follower.follow(image)
            prompt = _moved(seed, seed_box, box) if box is not None else None
            if prompt is None:
                if box is not None:
                    follower.why = "its box became too small to hold the prompt"
                lost_at = index
                break
            filled[index] = prompt
        handled = index
        if progress is not None:
            progress(index)
    # This run replaces what an earlier one left between start and stop, even past where
    # this one lost the object: frames tracked from an older, uncorrected box would be stale.
    fresh = track.without_tracked((start, cleared_to))
    why = follower.why if lost_at is not None else None
    return fresh.with_tracked(filled, lost_at=lost_at, lost_why=why)


def _moved(seed: Prompt, seed_box: Box, box: Box) -> Prompt | None:
    try:
        return moved(seed, seed_box, box)
    except InvalidPrompt:  # scaled into a degenerate shape: as lost as a collapsed box
        return None


@dataclass
class _Follower:
    """One tracker plus the checks that tell when it has lost its object."""

    name: str
    scale: float
    width: int
    height: int

    def start(self, image: np.ndarray, box: Box) -> None:
        self.tracker = _create(self.name)
        small = self._to_small(box)
        self.tracker.init(image, _xywh(small))
        self.box = small
        self.seed_area = (small[2] - small[0]) * (small[3] - small[1])
        self.look = _colours(image, small)
        self.why = ""
        self.checker: TemplateTracker | None = None
        if not isinstance(self.tracker, TemplateTracker):  # that one checks its own matches
            self.checker = TemplateTracker()
            self.checker.init(image, _xywh(small))

    def follow(self, image: np.ndarray) -> Box | None:
        """The box in full-frame pixels, or None where the object is lost."""
        ok, (x, y, w, h) = self.tracker.update(image)
        frame_h, frame_w = image.shape[:2]
        if not ok:
            if self._at_edge(frame_w, frame_h):
                return self._lost("it left the frame")
            return self._lost("the tracker could not find it")
        if min(w, h) < _MIN_SIDE:
            return self._lost("its box collapsed")
        box = (float(x), float(y), float(x + w), float(y + h))
        lo, hi = _AREA_RANGE
        if not lo <= w * h / self.seed_area <= hi:
            return self._lost("its box shrank or grew too fast")
        old = self.box
        jump = math.dist(_centre(box), _centre(old))
        if jump > _MAX_JUMP * math.hypot(old[2] - old[0], old[3] - old[1]):
            return self._lost("its box jumped further than its own size in one frame")
        inside = _clip(box, frame_w, frame_h)
        if inside is None or _area(inside) < _MIN_INSIDE * _area(box):
            return self._lost("it left the frame")
        look = _colours(image, inside)
        distance = cv2.compareHist(self.look, look, cv2.HISTCMP_BHATTACHARYYA)
        if distance > _MAX_LOOK:
            return self._lost("the box no longer shows it (hidden or gone)")
        if self.checker is not None and self.checker.verify(image, (x, y, w, h)) < _MIN_MATCH:
            return self._lost("the box no longer shows it (hidden, gone or the tracker drifted)")
        self.look = cv2.addWeighted(self.look, 0.95, look, 0.05, 0)  # adapt slowly to changes
        self.box = box
        return self._to_full(box)  # not clipped: a prompt may reach past the frame's edge

    def _lost(self, why: str) -> Box | None:
        self.why = why
        return None

    def _at_edge(self, frame_w: int, frame_h: int) -> bool:
        x1, y1, x2, y2 = self.box
        margin = max(4.0, 0.15 * max(x2 - x1, y2 - y1))
        return min(x1, y1, frame_w - x2, frame_h - y2) < margin

    def _to_small(self, box: Box) -> Box:
        s = self.scale
        return (box[0] * s, box[1] * s, box[2] * s, box[3] * s)

    def _to_full(self, box: Box) -> Box:
        s = self.scale
        return (box[0] / s, box[1] / s, box[2] / s, box[3] / s)


def _frames(
    reader: VideoReader, start: int, stop: int, step: int, scale: float
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame at tracking size) from ``start`` to ``stop`` inclusive. Backward runs
    decode short spans forward and hand them out in reverse (seeking back for every frame would
    decode each group of pictures again and again)."""

    def small(index: int) -> np.ndarray:
        rgb = reader.frame_array(index)
        if scale < 1:
            size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    if step > 0:
        for index in range(start, stop + 1):
            yield index, small(index)
        return
    hi = start
    while hi >= stop:
        lo = max(stop, hi - _BACKWARD_CHUNK + 1)
        chunk = [(i, small(i)) for i in range(lo, hi + 1)]
        yield from reversed(chunk)
        hi = lo - 1


def _target_box(prompt: Prompt, width: int, height: int) -> Box:
    """The box a tracker follows for ``prompt``: its explicit region, else its shape's box; a
    point or an arrow marks a spot, so the tracker follows a patch around it."""
    if prompt.region is not None:
        box = prompt.region.box
    elif isinstance(prompt, Point):
        r = max(12.0, 3 * prompt.radius)
        box = (
            prompt.center[0] - r,
            prompt.center[1] - r,
            prompt.center[0] + r,
            prompt.center[1] + r,
        )
    elif isinstance(prompt, Arrow):
        r = max(12.0, 0.25 * prompt.length)
        box = (prompt.tip[0] - r, prompt.tip[1] - r, prompt.tip[0] + r, prompt.tip[1] + r)
    elif isinstance(prompt, Rectangle):
        box = prompt.box
    else:
        box = prompt.bounds
    inside = _clip(box, width, height)
    if inside is None or min(inside[2] - inside[0], inside[3] - inside[1]) < 2:
        raise InvalidTrack(
            f"the region's box {tuple(round(v, 1) for v in box)} lies outside the "
            f"{width}×{height} frame: draw it on the object"
        )
    return inside


def _colours(image: np.ndarray, box: Box) -> np.ndarray:
    """A hue-saturation-value histogram of what ``box`` shows (normalised)."""
    x1, y1, x2, y2 = (round(v) for v in box)
    patch = image[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)]
    hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)


def _xywh(box: Box) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    return (round(x1), round(y1), max(1, round(x2 - x1)), max(1, round(y2 - y1)))


def _centre(box: Box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _clip(box: Box, width: float, height: float) -> Box | None:
    x1, y1 = max(0.0, box[0]), max(0.0, box[1])
    x2, y2 = min(float(width), box[2]), min(float(height), box[3])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None
