"""The prompts of a video: one :class:`~overlays.tracks.Track` per region, shown a frame at a time.

A :class:`VideoDocument` is a :class:`~app.gui.document.PromptDocument` whose ``prompts`` are
the regions as they are on the current frame (keyframe, tracked or interpolated), so the
canvas, the tools, the prompt list and the asking path work on a frame exactly as on a photo.
Every edit made on a frame becomes a keyframe of its region at that frame. Undo works on whole
track states: each edit records the tracks before and after and the frame it was made on, so
undoing an edit made on another frame goes back to that frame. Qt-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import overlays as ov
from app.gui.document import PromptDocument
from app.gui.undo import Command, Event, UndoStack
from overlays.tracks import FrameSource, Track

#: Where a frame's prompt comes from: a track's ``FrameSource``, or "held" (the nearest
#: keyframe, before the first or after the last one).
Source = str


def shown_at(track: Track, index: int) -> tuple[ov.Prompt, Source] | None:
    """The prompt of ``track`` on frame ``index``, as the app shows it: the track's own
    (keyframe, tracked, interpolated), else the nearest keyframe held — a region drawn once stays
    until it is deleted, so stepping on shows it to correct. Never past where a tracker lost it
    (in the direction it was tracking): there the region is not shown at all."""
    own = track.prompt_at(index)
    if own is not None:
        return own
    keys = list(track.keyframes)
    if not keys:
        return None
    lost = track.lost_at
    if index > keys[-1]:
        if lost is not None and lost > keys[-1] and index >= lost:
            return None
        return track.keyframes[keys[-1]], "held"
    if lost is not None and lost < keys[0] and index <= lost:
        return None
    return track.keyframes[keys[0]], "held"


class VideoDocument(PromptDocument):
    """Regions of a video. Extra events: ``frame_changed(index)`` (the current frame moved,
    also when undo goes back to another frame), ``tracks_changed()``."""

    def __init__(self, path: object) -> None:
        super().__init__(path)  # type: ignore[arg-type]
        self.frame_changed = Event()
        self.tracks_changed = Event()
        self.tracks: list[Track] = []
        self.frame = 0
        #: For each position of ``prompts``: the index of its track, and where it comes from.
        self.visible: list[int] = []
        self.sources: list[Source] = []
        self.undo_stack = TrackUndoStack(self)

    # -- the current frame ------------------------------------------------------------------

    def set_frame(self, index: int) -> None:
        """Show the regions as they are on frame ``index``."""
        if index != self.frame:
            self.frame = index
            self._refresh(emit=False)  # the frame is shown with its own prompts, not the last's
            self.frame_changed.emit(index)
            self.changed.emit()

    def track_of(self, position: int) -> int | None:
        """The track index of the prompt at ``position`` of ``prompts``."""
        return self.visible[position] if 0 <= position < len(self.visible) else None

    def selected_track(self) -> int | None:
        return self.track_of(self.selected) if self.selected is not None else None

    def source_of(self, position: int) -> Source | None:
        return self.sources[position] if 0 <= position < len(self.sources) else None

    def _refresh(self, emit: bool = True) -> None:
        """Recompute ``prompts`` for the current frame; keep the selected region selected."""
        chosen = self.selected_track()
        prompts: list[ov.Prompt] = []
        visible: list[int] = []
        sources: list[Source] = []
        for k, track in enumerate(self.tracks):
            shown = shown_at(track, self.frame)
            if shown is None:
                continue
            prompts.append(shown[0])
            visible.append(k)
            sources.append(shown[1])
        self.prompts, self.visible, self.sources = prompts, visible, sources
        selected = visible.index(chosen) if chosen in visible else None
        if selected != self.selected:
            self.selected = selected
            self.selection_changed.emit(-1 if selected is None else selected)
        if emit:
            self.changed.emit()

    def _restore(self, tracks: Sequence[Track], frame: int) -> None:
        """Put back a recorded state (undo/redo) and show the frame it was made on."""
        self.tracks = list(tracks)
        moved = frame != self.frame
        self.frame = frame
        self._refresh(emit=False)
        if moved:
            self.frame_changed.emit(frame)
        self.changed.emit()
        self.tracks_changed.emit()

    # -- raw mutations: what the shared commands do becomes keyframes -----------------------

    def _insert(self, index: int, prompt: ov.Prompt) -> None:
        at = self.visible[index] if index < len(self.visible) else len(self.tracks)
        self.tracks.insert(at, Track({self.frame: prompt}))
        self._refresh()
        self.tracks_changed.emit()

    def _remove(self, index: int) -> ov.Prompt:
        """Deleting a region on a frame deletes the region (all its frames)."""
        prompt = self.prompts[index]
        del self.tracks[self.visible[index]]
        if self.selected == index:
            self.selected = None
            self.selection_changed.emit(-1)
        self._refresh()
        self.tracks_changed.emit()
        return prompt

    def _set(self, index: int, prompt: ov.Prompt) -> None:
        old, k = self.prompts[index], self.visible[index]
        track = self.tracks[k]
        if dataclasses.replace(old, style=prompt.style) == prompt and old.style != prompt.style:
            track = restyled(track, prompt.style)  # a style belongs to the region, not a frame
        else:
            track = _keyed(track, self.frame, prompt)
        self.tracks[k] = track
        self._refresh(emit=False)
        self.replaced.emit(old, self.prompts[index])
        self.changed.emit()
        self.tracks_changed.emit()

    def _set_all(self, prompts: Sequence[ov.Prompt]) -> None:
        """A new list for this frame: prompts that are still there (the same objects) keep their
        region, changed ones become keyframes, new ones new regions, missing ones are deleted."""
        old = self.prompts
        new = list(prompts)
        used: set[int] = set()
        assigned: list[Track] = []
        for j, prompt in enumerate(new):
            k = next((i for i, p in enumerate(old) if i not in used and p is prompt), None)
            if k is None and len(new) == len(old) and j not in used:
                k = j  # same count: the prompt at this place was edited (a group move…)
            if k is None:
                assigned.append(Track({self.frame: prompt}))
                continue
            used.add(k)
            track = self.tracks[self.visible[k]]
            assigned.append(track if old[k] is prompt else _keyed(track, self.frame, prompt))
        shown = set(self.visible)
        queue = iter(assigned)
        tracks: list[Track] = []
        for i, track in enumerate(self.tracks):
            if i not in shown:
                tracks.append(track)  # not on this frame: untouched, in its place
            elif (nxt := next(queue, None)) is not None:
                tracks.append(nxt)
        tracks.extend(queue)
        self.tracks = tracks
        self._refresh()
        self.tracks_changed.emit()

    def restore_tracks(self, tracks: Sequence[Track]) -> None:
        """Put back the regions saved in the log, without undo history (a draft coming back)."""
        self.undo_stack.clear()
        self._restore(tracks, self.frame)

    # -- track edits (undoable) -------------------------------------------------------------

    def set_tracks(self, tracks: Sequence[Track], text: str) -> None:
        """Replace every track (a tracker's result, a keyframe removed) as one undo step."""
        if list(tracks) != self.tracks:
            self.undo_stack.push(TrackEdit(self, text=text, after=tuple(tracks)))

    def set_track(self, k: int, track: Track, text: str) -> None:
        tracks = list(self.tracks)
        if track:
            tracks[k] = track
        else:
            del tracks[k]
        self.set_tracks(tracks, text)

    def remove_keyframe(self, k: int, frame: int | None = None) -> bool:
        """Drop region ``k``'s keyframe at ``frame`` (default: the current one)."""
        frame = self.frame if frame is None else frame
        track = self.tracks[k]
        if frame not in track.keyframes:
            return False
        self.set_track(k, track.without_keyframe(frame), "remove keyframe")
        return True


def _keyed(track: Track, frame: int, prompt: ov.Prompt) -> Track:
    try:
        return track.with_keyframe(frame, prompt)
    except ov.OverlayError:  # another kind of prompt: it starts the region afresh
        return Track({frame: prompt})


def restyled(track: Track, style: ov.Style) -> Track:
    """``track`` with ``style`` on every keyframe and tracked frame."""

    def each(frames: dict[int, ov.Prompt] | object) -> dict[int, ov.Prompt]:
        assert isinstance(frames, dict)
        return {i: dataclasses.replace(p, style=style) for i, p in frames.items()}

    return dataclasses.replace(
        track, keyframes=each(dict(track.keyframes)), tracked=each(dict(track.tracked))
    )


class TrackEdit(Command):
    """One undo step of a video document: the tracks before and after, and the frame.

    It wraps a shared command (draw, move, delete, restyle…): the first ``redo`` runs that
    command on the current frame's prompts; later ones put back the recorded tracks.
    """

    def __init__(
        self,
        doc: VideoDocument,
        inner: Command | None = None,
        *,
        text: str = "",
        after: tuple[Track, ...] | None = None,
    ) -> None:
        super().__init__(inner.text if inner is not None else text)
        self.doc, self.inner = doc, inner
        self.frame = doc.frame
        self.before = tuple(doc.tracks)
        self.after = after
        self.merge_id = inner.merge_id if inner is not None else -1
        self._first = True

    def redo(self) -> None:
        if self._first and self.inner is not None:
            self.inner.redo()
            self.after = tuple(self.doc.tracks)
        else:
            assert self.after is not None
            self.doc._restore(self.after, self.frame)
        self._first = False

    def undo(self) -> None:
        self.doc._restore(self.before, self.frame)

    def merge_with(self, other: Command) -> bool:
        if not (
            isinstance(other, TrackEdit)
            and self.inner is not None
            and other.inner is not None
            and other.frame == self.frame
            and self.inner.merge_with(other.inner)
        ):
            return False
        self.after = other.after
        return True


class TrackUndoStack(UndoStack):
    """The undo stack of a video document: every command is recorded as a :class:`TrackEdit`."""

    def __init__(self, doc: VideoDocument) -> None:
        super().__init__()
        self.doc = doc

    def push(self, command: Command) -> None:
        if not isinstance(command, TrackEdit):
            command = TrackEdit(self.doc, command)
        super().push(command)


@dataclass(frozen=True)
class Span:
    """Frames ``start``..``stop`` (inclusive) of one region that come from ``source``."""

    start: int
    stop: int
    source: FrameSource


def spans(track: Track) -> list[Span]:
    """The runs of frames of ``track`` by where their prompt comes from (keyframes are runs of
    their own), in frame order; frames where the region is not shown are left out."""
    marks: dict[int, FrameSource] = {}
    keys = list(track.keyframes)
    if len(keys) > 1:
        for i in range(keys[0] + 1, keys[-1]):
            marks[i] = "interpolated"
    for i in track.tracked:
        marks[i] = "tracked"
    for i in keys:
        marks[i] = "key"
    out: list[Span] = []
    for i in sorted(marks):
        source = marks[i]
        last = out[-1] if out else None
        if last is not None and last.source == source and last.stop == i - 1 and source != "key":
            out[-1] = Span(last.start, i, source)
        else:
            out.append(Span(i, i, source))
    return out
