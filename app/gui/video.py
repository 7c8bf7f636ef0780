"""Video in the desktop app: open a clip, step and play through it, draw regions that live
through time, track them, and ask at a frame or over time.

A frame is an image: the canvas shows it through the same render pipeline as a photo (decoded
on the render thread), the prompts of the current frame are a
:class:`~app.gui.video_doc.VideoDocument`'s ``prompts``, and asking at a frame is the chat's
usual path (the log turn records the video, frame index and time). Opening, tracking and asking
over time run off the GUI thread; the GUI only reads the frame index (timestamps).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

import overlays as ov
from app.gui.conversation import settings_for
from app.gui.renderer import Loaded
from app.gui.threads import run_in_thread, serial_pool
from app.gui.video_answers import AnswersOverTime, OverTimeRow
from app.gui.video_bar import VideoBar, clock
from app.gui.video_doc import VideoDocument
from app.gui.video_frames import (
    BATCH_FRAMES,
    FrameAnswer,
    FrameRef,
    answer_over_time,
    plan_frames,
)
from app.gui.video_track import Tracker
from app.gui.writer import PendingTurn
from data_gen.qalog.log import NewTurn, TurnRow
from overlays.tracks import Track

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.gui.canvas import Canvas
    from app.gui.chat import ChatPanel
    from app.gui.controller import Studio
    from app.gui.settings import Settings
    from app.gui.status import Banner, StatusBar
    from app.gui.workers import EngineHost
    from app.gui.writer import LogWriter
    from overlays.video_io import VideoInfo, VideoReader

OVER_TIME_TAG = "over-time"


class VideoController(QObject):
    """Everything about the open video; idle while a photo is shown."""

    def __init__(
        self,
        *,
        studio: Studio,
        canvas: Canvas,
        bar: VideoBar,
        answers: AnswersOverTime,
        host: EngineHost,
        writer: LogWriter,
        chat: ChatPanel,
        statusbar: StatusBar,
        banner: Banner,
        current_settings: Callable[[], Settings],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.studio, self.canvas, self.bar, self.answers = studio, canvas, bar, answers
        self.host, self.writer, self.chat = host, writer, chat
        self.statusbar, self.banner = statusbar, banner
        self.current_settings = current_settings
        self.path: Path | None = None
        self.reader: VideoReader | None = None
        self.doc: VideoDocument | None = None
        self.shown_frame: int | None = None  # the frame the canvas (and studio.image) holds
        self._sha256: str | None = None
        self._tokens: dict[int, int] = {}  # render token -> frame index
        self._open_id = 0
        self._pool = serial_pool("video")  # opening and hashing, in order
        self._play = QTimer(self, interval=33)
        self._play.timeout.connect(self._tick)
        self._play_from: tuple[float, int] = (0.0, 0)
        self.tracker = Tracker(bar, statusbar, banner, parent=self)
        self.video_id: int | None = None  # the video's row in the log, once it answered
        self._unsaved = False
        self._save_timer = QTimer(self, singleShot=True, interval=1000)
        self._save_timer.timeout.connect(self.save_tracks)
        # The file list's "n Q&A, k reviewed" of the video, re-read once answers settle.
        self._statuses = QTimer(self, singleShot=True, interval=500)
        self._statuses.timeout.connect(lambda: writer.statuses(studio.files.set_statuses))
        bar.hide()
        bar.timeline.seek.connect(self.seek)
        bar.previous.clicked.connect(lambda: self.step(-1))
        bar.next.clicked.connect(lambda: self.step(+1))
        bar.play.toggled.connect(self.set_playing)
        bar.track_forward.clicked.connect(lambda: self.track(+1))
        bar.track_back.clicked.connect(lambda: self.track(-1))
        bar.cancel.clicked.connect(self.cancel_tracking)
        bar.remove_key.clicked.connect(self.remove_keyframe)
        answers.ask_over_time.clicked.connect(self.ask_over_time)
        answers.seek.connect(self.seek)
        answers.review.connect(self._review)
        canvas.image_loaded.connect(self._loaded)
        studio.image_changed.connect(self._image_changed)
        studio.video_requested.connect(self.open)
        studio.frame_ref = self.frame_ref

    # -- opening ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.reader is not None and self.doc is not None

    def open(self, path: Path) -> None:
        """Open ``path`` (the studio's current document is its VideoDocument)."""
        from overlays.video_io import VideoReader  # PyAV loads with the first video

        self.close()
        doc = self.studio.doc
        if not isinstance(doc, VideoDocument):
            return
        self.path, self.doc = path, doc
        self.canvas.image_size = None  # no drawing on the last image while the clip opens
        self.canvas.message = f"opening {path.name}…"
        self.canvas.viewport().update()
        self.bar.show()
        self.bar.show_lost("")
        self._open_id += 1
        open_id = self._open_id
        run_in_thread(
            VideoReader,
            path,
            owner=self,
            pool=self._pool,
            on_return=lambda reader: self._opened(open_id, reader),
            on_error=lambda exc: self._open_failed(open_id, path, exc),
        )

    def _opened(self, open_id: int, reader: VideoReader) -> None:
        doc = self.doc
        if open_id != self._open_id or doc is None:
            reader.close()
            return
        self.reader = reader
        self._sha256 = None
        self.bar.timeline.set_length(reader.frame_count)
        self.answers.until.setRange(0.0, reader.duration)
        self.answers.until.setValue(reader.duration)
        self._play.setInterval(max(10, round(1000 / max(reader.fps, 1.0))))
        doc.frame_changed.connect(self._show)
        doc.tracks_changed.connect(self._tracks)
        doc.tracks_changed.connect(self._changed_tracks)
        doc.frame = min(doc.frame, reader.frame_count - 1)
        self._show(doc.frame)
        self._tracks()
        self.statusbar.image.setText(
            f"{reader.path.name} · {reader.width}×{reader.height} · {reader.frame_count} frames"
            f" · {clock(reader.duration)}"
        )
        from overlays.video_io import file_sha256

        path = reader.path
        run_in_thread(
            file_sha256,
            path,
            owner=self,
            pool=self._pool,
            on_return=lambda digest: self._hashed(open_id, digest),
        )

    def _hashed(self, open_id: int, digest: str) -> None:
        if open_id != self._open_id or self.reader is None:
            return
        self._sha256 = digest
        self.writer.call(
            f"reading the log for {self.reader.path.name}",
            "open_video",
            self.info(),
            on_done=lambda state: self._logged(open_id, state),
        )

    def _logged(
        self, open_id: int, state: tuple[int, list[dict[str, object]], list[TurnRow]]
    ) -> None:
        """The log answered: the saved regions come back (into an untouched document) and the
        last question asked over time is listed again."""
        doc = self.doc
        if open_id != self._open_id or doc is None:
            return
        self.video_id, saved, turns = state
        tracks = [Track.from_dict(t) for t in saved]
        if tracks and not doc.tracks and doc.undo_stack.count() == 0:
            doc.restore_tracks(tracks)
        elif self._unsaved:
            self.save_tracks()
        over_time = [t for t in turns if OVER_TIME_TAG in t.tags]
        if over_time and not self.answers.rows:
            last = max(over_time, key=lambda t: t.id).question
            rows = [t for t in over_time if t.question == last]
            self.answers.start(last, len(rows))
            for t in rows:
                text = t.corrected_answer or t.answer
                row = OverTimeRow(t.frame_index or 0, t.frame_time or 0.0, text, "", t.id, t.review)
                self.answers.add(row)
            self.bar.timeline.set_answers(self.answers.frames())

    def _changed_tracks(self) -> None:
        self._unsaved = True
        self._save_timer.start()

    def save_tracks(self) -> None:
        """Autosave the regions of the video to the log (their draft: no conversation)."""
        self._save_timer.stop()
        if self.doc is None or self.video_id is None or not self._unsaved:
            return
        self._unsaved = False
        self.writer.call(
            "saving the regions of the video",
            "save_tracks",
            self.video_id,
            [t.to_dict() for t in self.doc.tracks],  # a Track does not pickle
        )

    def _open_failed(self, open_id: int, path: Path, exc: Exception) -> None:
        if open_id != self._open_id:
            return
        message = str(exc) if isinstance(exc, ov.OverlayError) else f"{path}: {exc!r}"
        self.bar.hide()
        self.canvas.message = message
        self.canvas.composite.set_frame(None)
        self.canvas.viewport().update()
        self.banner.show_error(message)

    def close(self) -> None:
        """Leave the video: stop playing and tracking (the document stays, with its tracks)."""
        self.set_playing(False)
        self.cancel_tracking()
        self.save_tracks()
        if self.doc is not None and self.reader is not None:
            self.doc.frame_changed.disconnect(self._show)
            self.doc.tracks_changed.disconnect(self._tracks)
            self.doc.tracks_changed.disconnect(self._changed_tracks)
        self._open_id += 1
        self.reader = None  # the render thread may still decode with it: no close() here
        self.doc = None
        self.path = None
        self.video_id = None
        self._unsaved = False
        self.shown_frame = None
        self._tokens.clear()
        self.bar.hide()

    def _image_changed(self, path: object) -> None:
        if path != self.path:
            self.close()

    # -- frames -----------------------------------------------------------------------------

    @property
    def frame(self) -> int:
        return self.doc.frame if self.doc is not None else 0

    def seek(self, index: int) -> None:
        """Go to frame ``index`` (clamped to the clip)."""
        if self.reader is None or self.doc is None:
            return
        index = max(0, min(int(index), self.reader.frame_count - 1))
        self.doc.set_frame(index)

    def step(self, delta: int) -> None:
        if self.reader is None:
            return
        self.set_playing(False)
        target = self.frame + delta
        if not 0 <= target < self.reader.frame_count:
            self.statusbar.showMessage("last frame" if delta > 0 else "first frame", 2000)
            return
        self.seek(target)

    def _show(self, index: int) -> None:
        reader, path = self.reader, self.path
        if reader is None or path is None:
            return
        token = self.canvas.show_frame(path, lambda: reader.frame(index))
        self._tokens = {t: i for t, i in self._tokens.items() if t > token - 8}
        self._tokens[token] = index
        self.bar.show_position(
            index, reader.frame_count, reader.time_of(index), reader.duration, reader.fps
        )
        studio = self.studio
        if studio.doc is self.doc:
            # A conversation is about one frame: another frame starts a new one.
            studio.conversation.start_over(self.doc.prompts if self.doc else ())
            studio.conversation.image_id = None

    def _loaded(self, loaded: Loaded) -> None:
        index = self._tokens.get(loaded.token)
        if index is not None and loaded.path == self.path:
            self.shown_frame = index

    def info(self) -> VideoInfo:
        """The open video's info (hashing the file now if the background hash is not done)."""
        from overlays.video_io import VideoInfo, file_sha256

        assert self.reader is not None
        if self._sha256 is None:
            self._sha256 = file_sha256(self.reader.path)
        return VideoInfo(
            path=str(self.reader.path),
            width=self.reader.width,
            height=self.reader.height,
            fps=self.reader.fps,
            frame_count=self.reader.frame_count,
            duration=self.reader.duration,
            codec=self.reader.codec,
            variable_frame_rate=self.reader.variable_frame_rate,
            sha256=self._sha256,
        )

    def frame_ref(self) -> FrameRef | None:
        """The frame on screen, for a question asked now (None when no video is shown)."""
        image, index = self.studio.image, self.shown_frame
        if self.reader is None or image is None or index is None:
            return None
        return FrameRef(self.info(), index, self.reader.time_of(index), image)

    # -- playing ----------------------------------------------------------------------------

    def toggle_play(self) -> None:
        self.set_playing(not self._play.isActive())

    def set_playing(self, on: bool) -> None:
        """Play at the clip's rate from the current frame; frames the decoder cannot keep up
        with are skipped (the clock decides which frame is due)."""
        if on and self.reader is not None:
            if self.frame >= self.reader.frame_count - 1:
                self.seek(0)
            self._play_from = (time.perf_counter(), self.frame)
            self._play.start()
        else:
            self._play.stop()
        self.bar.play.blockSignals(True)
        self.bar.play.setChecked(self._play.isActive())
        self.bar.play.setText("❚❚ Pause" if self._play.isActive() else "▶ Play")
        self.bar.play.blockSignals(False)

    def _tick(self) -> None:
        reader = self.reader
        if reader is None:
            self.set_playing(False)
            return
        if self.canvas.renderer.busy:
            return  # the last frame is still decoding: this one is dropped
        started, first = self._play_from
        # By timestamps, not by the average rate: right on variable-frame-rate clips too.
        t = reader.time_of(first) + time.perf_counter() - started
        due = reader.frame_count - 1 if t >= reader.duration else reader.index_at(t)
        if due >= reader.frame_count - 1:
            self.seek(reader.frame_count - 1)
            self.set_playing(False)
        elif due != self.frame:
            self.seek(due)

    # -- tracks -----------------------------------------------------------------------------

    def _tracks(self) -> None:
        doc = self.doc
        if doc is None:
            return
        colors = [_color(t) for t in doc.tracks]
        self.bar.timeline.set_tracks(doc.tracks, colors)

    def remove_keyframe(self) -> None:
        doc = self.doc
        k = doc.selected_track() if doc is not None else None
        if doc is None or k is None or not doc.remove_keyframe(k):
            self.statusbar.showMessage("Select a region that has a keyframe on this frame", 4000)

    @property
    def tracking(self) -> object | None:
        """The tracking run in progress (None when none runs)."""
        return self.tracker.run

    def track(self, direction: int) -> bool:
        """Track the selected region (else every region shown here) from this frame to the end
        (``direction`` +1) or the start (−1), off the GUI thread. False if nothing starts."""
        doc, reader = self.doc, self.reader
        if doc is None or reader is None:
            return False
        # Applied only to the document still shown when the run ends.
        started = self.tracker.start(doc, reader, direction, lambda: self.doc)
        if started:
            self.set_playing(False)
        return started

    def cancel_tracking(self) -> None:
        self.tracker.cancel()

    # -- asking over time -------------------------------------------------------------------

    def ask_over_time(self) -> bool:
        """Ask the chat box's question every N seconds from this frame, batched through the
        engine; answers stream into the answers-over-time list and the log. False if it
        cannot start."""
        doc, reader, path = self.doc, self.reader, self.path
        if doc is None or reader is None or path is None:
            return False
        question = self.chat.question.toPlainText().strip()
        if not question:
            self.statusbar.showMessage("Type the question in the chat box first", 4000)
            return False
        if self.host.engine is None:
            self.chat.notice.setVisible(True)
            self.statusbar.showMessage("No model is ready: load one first (see the chat panel)")
            return False
        from overlays.video_io import sample_times

        try:
            frames = sample_times(
                reader,
                start=reader.time_of(doc.frame),
                every=self.answers.every.value(),
                until=self.answers.until.value(),
            )
        except (ValueError, ov.OverlayError) as exc:  # until before now, far too many frames
            self.statusbar.showMessage(f"cannot ask over time: {exc}", 6000)
            return False
        plans = plan_frames(doc.tracks, frames, [reader.time_of(i) for i in frames])
        settings = self.current_settings()
        info = self.info()
        count = len(plans)
        progress = [0]
        self.answers.start(question, count)
        self.bar.timeline.set_answers([])

        def got(item: FrameAnswer) -> None:
            progress[0] += 1
            self._over_time_answer(item, info)
            self.host.working(f"asking over time: {progress[0]}/{count} frames")

        job = self.host.run(
            answer_over_time,
            path,
            plans,
            question,
            settings_for(settings.generation),
            settings.template,
            BATCH_FRAMES,
            detail=f"asking over time: 0/{count} frames",
            on_yield=got,
            on_return=lambda n: self.statusbar.showMessage(
                f"asked over time: {n} of {count} frame(s) answered", 6000
            ),
            on_error=lambda exc: self.banner.show_error(f"the model failed: {exc}"),
        )
        if job is None:
            self.statusbar.showMessage("The model is busy: wait for the answer in progress", 4000)
            return False
        return True

    def _over_time_answer(self, item: FrameAnswer, info: VideoInfo) -> None:
        plan = item.plan
        answer, prepared = item.answer, item.prepared
        row = OverTimeRow(plan.index, plan.time, answer.text if answer else "", item.error)
        i = self.answers.add(row)
        self.bar.timeline.set_answers(self.answers.frames())
        if answer is None or prepared is None or item.image is None:
            return
        spec = self.host.spec
        turn = NewTurn.from_answer(
            0,
            prepared.request,
            answer,
            model=answer.model or (spec.model or spec.server_url if spec else "unknown"),
            source="gui",
            question_refs=prepared.refs,
            tags=[OVER_TIME_TAG],
        )
        ref = FrameRef(info, plan.index, plan.time, item.image)
        answers = self.answers

        def saved(stored: TurnRow) -> None:
            if i < len(answers.rows) and answers.rows[i] is row:
                answers.set_turn(i, stored.id)
            self.answered(stored)

        self.writer.commit_turn(PendingTurn(None, None, turn, saved, path=self.path, frame=ref))

    def answered(self, row: TurnRow) -> None:
        """A turn about a frame was saved (or reviewed): the list's count follows."""
        if row.video_id is not None:
            self._statuses.start()

    def _review(self, turn_id: int, status: str, corrected: str) -> None:
        def done(row: TurnRow) -> None:
            self.answers.set_review(row.id, row.review, row.corrected_answer)
            self.answered(row)

        self.writer.review(turn_id, status, corrected or None, done)


def _color(track: Track) -> tuple[int, int, int]:
    for prompt in (*track.keyframes.values(), *track.tracked.values()):
        rgb = prompt.style.rgb
        return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    return (200, 200, 200)
