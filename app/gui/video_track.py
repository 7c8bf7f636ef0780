"""Tracking regions of a video from the desktop app: :func:`overlays.tracking.track` on a thread
of its own (with its own reader), progress and Cancel in the video bar, the result applied as one
undo step, and a lost object said on screen."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

import overlays as ov
from app.gui.threads import run_in_thread
from app.gui.video_bar import VideoBar, clock
from app.gui.video_doc import VideoDocument, shown_at
from overlays.tracks import Track

if TYPE_CHECKING:
    from app.gui.status import Banner, StatusBar
    from overlays.video_io import VideoReader


class Tracker(QObject):
    """One tracking run at a time; ``run`` is (cancel event, [frame done], start, stop)."""

    def __init__(
        self, bar: VideoBar, statusbar: StatusBar, banner: Banner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.bar, self.statusbar, self.banner = bar, statusbar, banner
        self.run: tuple[threading.Event, list[int], int, int] | None = None
        self._poll = QTimer(self, interval=100)
        self._poll.timeout.connect(self._progress)

    def start(
        self,
        doc: VideoDocument,
        reader: VideoReader,
        direction: int,
        current: Callable[[], VideoDocument | None],
    ) -> bool:
        """Track the selected region of ``doc`` (else every region shown on its frame) to the
        end (``direction`` +1) or the start (−1) of ``reader``'s clip. The result is applied
        if ``current()`` is still ``doc`` then. False if nothing starts."""
        path = reader.path
        if self.run is not None:
            return False
        chosen = doc.selected_track()
        ks = [chosen] if chosen is not None else list(doc.visible)
        if not ks:
            self.statusbar.showMessage("Draw a region on this frame first, then track it", 4000)
            return False
        start = doc.frame
        stop = reader.frame_count - 1 if direction > 0 else 0
        if start == stop:
            self.statusbar.showMessage("Nothing to track: this is the last frame", 3000)
            return False
        originals = {k: doc.tracks[k] for k in ks}
        seeds = {k: _seeded(t, start) for k, t in originals.items()}
        cancel, done = threading.Event(), [start]
        self.run = (cancel, done, start, stop)
        self.bar.set_busy(True, "tracking %p%")
        self.bar.progress.setValue(0)
        self.bar.show_lost("")
        self._poll.start()

        def work() -> dict[int, Track]:
            from overlays.tracking import track
            from overlays.video_io import VideoReader

            results: dict[int, Track] = {}
            with VideoReader(path) as own:  # one reader per thread
                for k, seed in seeds.items():
                    if cancel.is_set():
                        break
                    results[k] = track(
                        own,
                        seed,
                        start,
                        stop,
                        cancel=cancel.is_set,
                        progress=lambda i: done.__setitem__(0, i),
                    )
            return results

        text = "track forward" if direction > 0 else "track backward"
        run_in_thread(
            work,
            owner=self,
            on_return=lambda results: self._tracked(doc, reader, current, originals, results, text),
            on_error=self._failed,
            on_finish=self._finished,
        )
        return True

    def cancel(self) -> None:
        if self.run is not None:
            self.run[0].set()

    def _progress(self) -> None:
        if self.run is None:
            return
        _, done, start, stop = self.run
        self.bar.progress.setValue(round(100 * abs(done[0] - start) / max(abs(stop - start), 1)))

    def _tracked(
        self,
        doc: VideoDocument,
        reader: VideoReader,
        current: Callable[[], VideoDocument | None],
        originals: dict[int, Track],
        results: dict[int, Track],
        text: str,
    ) -> None:
        if current() is not doc:
            return
        tracks = list(doc.tracks)
        changed, lost = False, []
        for k, result in results.items():
            if k >= len(tracks) or tracks[k] is not originals[k]:
                self.statusbar.showMessage("A region changed while it was tracked: track again")
                continue
            tracks[k], changed = result, True
            if result.lost_at is not None:
                at = result.lost_at
                why = f" ({result.lost_why})" if result.lost_why else ""
                lost.append(
                    f"Lost region {k} at frame {at}, {clock(reader.time_of(at))}{why}: "
                    "draw it again there (a keyframe) and track on"
                )
        if changed:
            doc.set_tracks(tracks, text)
        self.bar.show_lost("  ".join(lost))
        if lost:
            self.statusbar.showMessage(lost[0], 8000)
        elif self.run is not None and self.run[0].is_set():
            self.statusbar.showMessage("Tracking cancelled: the frames tracked so far stay", 5000)

    def _failed(self, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, ov.OverlayError) else repr(exc)
        self.banner.show_error(f"tracking failed: {message}")

    def _finished(self) -> None:
        self.run = None
        self._poll.stop()
        self.bar.set_busy(False)


def _seeded(track: Track, start: int) -> Track:
    """``track`` ready to follow from ``start``: a prompt held there (outside the keyframes)
    becomes a keyframe — tracking starts from what the person sees."""
    shown = shown_at(track, start)
    if shown is not None and shown[1] == "held":
        return track.with_keyframe(start, shown[0])
    return track
