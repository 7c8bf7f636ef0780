"""What a video export is made of: :class:`VideoSample` (Qt-free, log-free) and its frames.

A sample is one or more logged video turns on one video: a conversation at one frame (the
log keeps a conversation on its frame), or for ``streaming`` a timeline (the same question
asked at several moments). Each region's prompt at any frame comes from its stored track
(``overlays.tracks.Track.prompt_at``: keyframes, interpolation, tracked frames); a region with
no stored track has the prompts logged at the asked frames as keyframes. Beyond what was drawn
or tracked a region stays where it was last known (:meth:`VideoSample.prompts_at` says so, the
summary counts those frames); where a tracker lost the object, the clip ends.

Clips are cut on a grid anchored at the first asked frame, so that frame is always in the clip
exactly; ``--augment`` redraws every region once per variant (kind, colour, width) and applies
that drawing to the region's geometry on every frame (:func:`redraw_frames`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import overlays as ov
from data_gen.augment import redrawn_prompts, redrawn_texts
from data_gen.records import Conversation, Exchange
from overlays import Prompt, RegionRef
from overlays.tracks import Track

#: Markers a trainer splits the text at; a person's text holding one is left out.
MARKERS: tuple[str, ...] = ("<image>", "<video>", "<region>")


@dataclass(frozen=True)
class VideoRef:
    """A logged video: where it is and what it was when logged."""

    id: int
    path: str
    sha256: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass(frozen=True)
class VideoTurn:
    """One question about one frame and its final answer (corrected when edited)."""

    turn_id: int
    session_id: int
    frame: int
    time: float  # seconds from the first frame (the frame's presentation time)
    question: str
    answer: str
    question_refs: tuple[RegionRef, ...]
    prompts: tuple[Prompt, ...]  # as drawn on that frame when asked
    review: str = "unreviewed"


@dataclass(frozen=True)
class VideoSample:
    """Turns on one video, in time order, with the regions' tracks (None: no stored track)."""

    key: str
    video: VideoRef
    turns: tuple[VideoTurn, ...]
    tracks: tuple[Track | None, ...] = ()
    split: str = "train"
    _keys: tuple[Track | None, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.turns:
            raise ValueError("a video sample needs at least one turn")
        regions = len(self.turns[0].prompts)
        if any(len(t.prompts) != regions for t in self.turns):
            raise ValueError("every turn of a video sample marks the same regions")
        tracks = self.tracks or (None,) * regions
        if len(tracks) != regions:
            raise ValueError(f"{len(tracks)} tracks for {regions} regions")
        object.__setattr__(self, "tracks", tuple(tracks))
        object.__setattr__(self, "_keys", tuple(self._keyframes(r) for r in range(regions)))

    def _keyframes(self, region: int) -> Track | None:
        keys = {t.frame: t.prompts[region] for t in self.turns}
        try:
            return Track(keyframes=keys, tracked={}, lost_at=None)
        except (ValueError, ov.OverlayError):  # kinds differ between asks: no interpolation
            return None

    @property
    def prompts(self) -> tuple[Prompt, ...]:
        """The prompts as drawn at the first asked frame (the texts name these)."""
        return self.turns[0].prompts

    @property
    def first_turn(self) -> int:
        return self.turns[0].turn_id

    @property
    def asked_frames(self) -> list[int]:
        return sorted({t.frame for t in self.turns})

    def prompts_at(self, frame: int) -> tuple[tuple[Prompt, ...], bool] | None:
        """Every region's prompt at ``frame`` and whether one was held still (neither drawn,
        interpolated nor tracked there: it stays where it was last known); None where a stored
        track lost the object (at and past ``lost_at``)."""
        out: list[Prompt] = []
        held = False
        for region, track in enumerate(self.tracks):
            if track is not None:
                found = track.prompt_at(frame)
                if found is not None:
                    out.append(found[0])
                    continue
                kept = _held(track, frame)
                if kept is None:
                    return None
                out.append(kept)
                held = True
                continue
            keys = self._keys[region]
            found = keys.prompt_at(frame) if keys is not None else None
            if found is None:
                nearest = min(self.turns, key=lambda t: (abs(t.frame - frame), t.frame))
                out.append(nearest.prompts[region])
                held = held or nearest.frame != frame
            else:
                out.append(found[0])
        return tuple(out), held

    def conversation(self) -> Conversation:
        """The first asked frame as an image conversation (for the image export's rewriting
        and augmentation rules)."""
        first = self.turns[0]
        size = self.video.size
        regions = tuple(ov.fit_region(p.marked_region(), size) for p in first.prompts)
        exchanges = tuple(
            Exchange(t.turn_id, t.question, t.answer, t.question_refs) for t in self.turns
        )
        return Conversation(
            key=self.key,
            session_id=first.session_id,
            image_id=0,
            image_path=f"{self.video.path}#frame={first.frame}",
            image_sha256=self.video.sha256,
            image_size=size,
            prompts=first.prompts,
            regions=regions,
            exchanges=exchanges,
            split=self.split,
        )


def _held(track: Track, frame: int) -> Prompt | None:
    """The prompt a track's region keeps at ``frame`` outside what was drawn or tracked: the
    nearest known frame's, unless the tracker lost the object on the way there."""
    if not track:
        return None
    lo, hi = track.span()
    lost = track.lost_at
    if lost is not None and ((lost > hi and frame >= lost) or (lost < lo and frame <= lost)):
        return None
    known = sorted({*track.keyframes, *track.tracked})
    nearest = min(known, key=lambda k: (abs(k - frame), k))
    found = track.prompt_at(nearest)
    return found[0] if found is not None else None


@dataclass(frozen=True)
class ClipPlan:
    """The frames of a clip: source frame per output frame, and the prompts drawn on each."""

    frames: tuple[int, ...]
    prompts: tuple[tuple[Prompt, ...], ...]
    fps: float
    anchor: int  # position of the first asked frame in ``frames``
    held: int = 0  # output frames where a region stays where it was last known


def clip_plan(sample: VideoSample, *, fps: float, before: float, after: float) -> ClipPlan | None:
    """Output frames at ``fps`` from ``before`` seconds ahead of the first asked frame to
    ``after`` seconds past the last, on a grid through the first asked frame, cut to the frames
    where every region has a prompt. None when the asked frames themselves lack one.

    The output rate never exceeds the video's (no frame is repeated).
    """
    video = sample.video
    rate = min(fps, video.fps) if video.fps > 0 else fps
    step = video.fps / rate if video.fps > 0 else 1.0
    first = sample.asked_frames[0]
    last = sample.asked_frames[-1]
    lo = -math.floor(before * rate + 1e-9)
    hi = math.ceil((last - first) / step - 1e-9) + math.floor(after * rate + 1e-9)
    grid: list[tuple[int, int]] = []  # (k, source frame)
    for k in range(lo, hi + 1):
        src = first + round(k * step)
        if src < 0 or src >= video.frame_count:
            continue
        if grid and grid[-1][1] == src:
            continue
        grid.append((k, src))
    drawn: dict[int, tuple[tuple[Prompt, ...], bool]] = {}
    for _, src in grid:
        found = sample.prompts_at(src)
        if found is not None:
            drawn[src] = found
    if first not in drawn:
        return None
    # The contiguous run around the first asked frame where every region is drawn.
    at = next(i for i, (_, src) in enumerate(grid) if src == first)
    start, stop = at, at + 1
    while start > 0 and grid[start - 1][1] in drawn:
        start -= 1
    while stop < len(grid) and grid[stop][1] in drawn:
        stop += 1
    kept = [src for _, src in grid[start:stop]]
    return ClipPlan(
        frames=tuple(kept),
        prompts=tuple(drawn[s][0] for s in kept),
        fps=rate,
        anchor=at - start,
        held=sum(1 for s in kept if drawn[s][1]),
    )


def _rng(seed: int, turn_id: int, variant: int, region: int) -> random.Random:
    return random.Random(f"vipstudio.augment-video/{seed}/{turn_id}/{variant}/{region}")


def redraw_frames(
    sample: VideoSample, plan: ClipPlan, variant: int, seed: int
) -> tuple[ClipPlan, tuple[tuple[str, str], ...]] | None:
    """Variant ``variant`` of a clip: each region redrawn with ONE kind, colour and width
    (chosen as :func:`data_gen.augment.redrawn_prompts` does at the first asked frame) on every
    frame, following the region's geometry there; and the texts naming the new marks.

    None when the new kind cannot mark the region on some frame.
    """
    conversation = sample.conversation()
    anchors = redrawn_prompts(conversation, variant, seed)
    texts = redrawn_texts(conversation, anchors)
    size = sample.video.size
    frames: list[tuple[Prompt, ...]] = []
    for prompts in plan.prompts:
        redrawn: list[Prompt] = []
        for region, (old, anchor) in enumerate(zip(prompts, anchors, strict=True)):
            radius = anchor.style.width if anchor.kind == "point" else 8.0
            rng = _rng(seed, sample.first_turn, variant, region)  # same draws on every frame
            try:
                marked = ov.fit_region(old.marked_region(), size)
                redrawn.append(
                    ov.generate(
                        anchor.kind, marked, size, rng, anchor.style, anchor.label, radius=radius
                    )
                )
            except ov.OverlayError:
                return None
        frames.append(tuple(redrawn))
    return (
        ClipPlan(plan.frames, tuple(frames), plan.fps, plan.anchor, plan.held),
        texts,
    )


def texts_of(sample: VideoSample) -> tuple[tuple[str, str], ...]:
    return tuple((t.question, t.answer) for t in sample.turns)


def has_marker(text: str, markers: Sequence[str] = MARKERS) -> str | None:
    """The first trainer marker typed in ``text``, if any."""
    return next((m for m in markers if m in text), None)
