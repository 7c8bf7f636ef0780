"""The single writer of the Q&A log: every log call of the app goes through it.

The app's process holds no connection to the log: the connection lives in a child process
(:mod:`app.gui.logproc`), so that no code of the app — Qt's file dialog sniffing the log's
files — can drop SQLite's locks. The calls go to it from one background thread, in the order
they were made, so the GUI never waits on SQLite (a locked database can block for seconds).
Finished answers are kept in memory until they are committed; a failed commit is retried, and
whatever is still unsaved at exit is written to a recovery file rather than lost.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

import overlays as ov
from app.gui import logproc
from app.gui.logops import ImageState
from app.gui.logproc import LogProcess, LogProcessDied, LogProcessError
from app.gui.threads import run_in_thread, serial_pool
from data_gen.qalog.log import LogError, NewTurn, TurnRow, default_db_path
from data_gen.safe_write import atomic_write

RETRY_MS = 3000


@dataclass
class PendingTurn:
    """A finished answer waiting to be committed. ``session_id`` None starts a session;
    ``image_id`` None registers ``path`` first. ``on_saved`` gets the stored row."""

    image_id: int | None
    session_id: int | None
    turn: NewTurn
    on_saved: Callable[[TurnRow], Any] | None = None
    path: Path | None = None
    attempts: int = 0
    #: A question about a video frame: ``app.gui.video_frames.FrameRef`` (logged with it).
    frame: Any = None


class LogWriter(QObject):
    """Talks to the log process; ``error`` reports failures (the app shows them, goes on)."""

    error = Signal(str)
    status = Signal(str)

    def __init__(
        self, path: Path | None = None, busy_timeout_s: float = 5.0, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.path = Path(path) if path else default_db_path()
        self.busy_timeout_s = busy_timeout_s
        self._pool = serial_pool("log")
        self._process: LogProcess | None = None
        self.unsaved: list[PendingTurn] = []
        # Request ids the log confirmed, recorded on the log thread: at exit, a confirmation
        # still queued for the GUI thread must not make a saved answer look unsaved.
        self._confirmed: set[str] = set()
        self._confirmed_lock = threading.Lock()
        self._retry = QTimer(self, singleShot=True, interval=RETRY_MS)
        self._retry.timeout.connect(self._flush)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def child_pid(self) -> int | None:
        """The log process's pid while it runs (it starts with the first call)."""
        process = self._process
        return process.pid if process is not None and process.alive else None

    def _run(self, op: str, *args: Any) -> Any:
        """On the log thread: ``op`` in the log process, started (again) if needed. Every
        call is idempotent (a turn carries its request id), so one that met a dead process is
        sent once more to a new one."""
        for attempt in range(2):
            try:
                if self._process is None or not self._process.alive:
                    self._process = logproc.take()
                    self._process.configure(self.path, self.busy_timeout_s)
                result = self._process.call(op, *args)
                if op == "commit_turn":  # (image id, session id, path, turn[, frame])
                    with self._confirmed_lock:
                        self._confirmed.add(args[3].request_id)
                return result
            except LogProcessDied:
                process, self._process = self._process, None
                if process is not None:
                    process.close(timeout_s=1.0)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(
        self,
        what: str,
        op: str,
        *args: Any,
        on_done: Callable[[Any], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
    ) -> None:
        """Run the log call ``op`` (see ``logops.OPS``) with ``args`` off the GUI thread;
        report failure as ``"{what}: {message}"``."""

        def failed(exc: Exception) -> None:
            known = LogError | ov.OverlayError | LogProcessError
            message = str(exc) if isinstance(exc, known) else repr(exc)
            self.error.emit(f"{what}: {message}")
            if on_error is not None:
                on_error(exc)

        run_in_thread(
            self._run, op, *args, owner=self, pool=self._pool, on_return=on_done, on_error=failed
        )

    def start(self) -> None:
        """Start the log process now (in the background) rather than on the first call."""
        self.call("opening the log", "ping")

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until every queued call ran (tests, and once at exit)."""
        return self._pool.waitForDone(timeout_ms)

    # -- reading ----------------------------------------------------------------------------

    def open_image(self, path: Path, on_done: Callable[[ImageState | None], Any]) -> None:
        """Register ``path`` (by content hash) and read back its turns and draft; None for a
        file that is not a readable image (the canvas reports that)."""
        self.call(f"reading the log for {path.name}", "open_image", path, on_done=on_done)

    def turns(self, image_id: int, on_done: Callable[[list[TurnRow]], Any]) -> None:
        self.call("reading the log", "turns", image_id, on_done=on_done)

    def turn(self, turn_id: int, on_done: Callable[[TurnRow], Any]) -> None:
        self.call("reading the log", "turn", turn_id, on_done=on_done)

    def statuses(self, on_done: Callable[[dict[str, tuple[int, int]]], Any]) -> None:
        """Per image path: (number of turns, number reviewed), for the file list's filters."""
        self.call("reading the log", "statuses", on_done=on_done)

    def region_labels(self, folder: Path, on_done: Callable[[list[str]], Any]) -> None:
        """The labels of the regions imported for images in ``folder``, most used first."""
        self.call("reading the log", "region_labels", str(folder), on_done=on_done)

    def prompted_images(
        self,
        paths: Sequence[Path],
        on_done: Callable[[list[tuple[Path, int, list[ov.Prompt]]]], Any],
        on_error: Callable[[Exception], Any] | None = None,
    ) -> None:
        """Of ``paths``, the images with a draft (or imported regions) in the log, with their
        prompts: what "ask every region of the folder" asks about."""
        self.call(
            "reading the drafts", "prompted_images", list(paths), on_done=on_done, on_error=on_error
        )

    # -- writing ----------------------------------------------------------------------------

    def save_draft(
        self, image_id: int, prompts: Sequence[ov.Prompt], question: str, session_id: int | None
    ) -> None:
        self.call(
            "autosaving the drawing",
            "save_draft",
            image_id,
            list(prompts),
            question,
            session_id,
            on_done=lambda _: self.status.emit("draft saved"),
        )

    def commit_turn(self, pending: PendingTurn) -> None:
        """Commit a finished answer now; keep and retry it until it is saved."""
        if pending.turn.request_id is None:
            # A retry after a commit whose confirmation was lost must not add it twice.
            pending.turn.request_id = f"gui-{uuid.uuid4().hex}"
        self.unsaved.append(pending)
        self._commit(pending)

    def _commit(self, pending: PendingTurn) -> None:
        def done(row: TurnRow) -> None:
            # A retry must not register the image or start a session a second time.
            pending.image_id, pending.session_id = row.image_id, row.session_id
            if pending in self.unsaved:
                self.unsaved.remove(pending)
            with self._confirmed_lock:
                self._confirmed.discard(pending.turn.request_id or "")
            self.status.emit("answer saved to the log")
            if pending.on_saved is not None:
                pending.on_saved(row)

        def failed(exc: Exception) -> None:
            pending.attempts += 1
            self.status.emit(f"{len(self.unsaved)} answer(s) not saved yet: retrying")
            self._retry.start()

        self.call(
            "saving the answer",
            "commit_turn",
            pending.image_id,
            pending.session_id,
            pending.path,
            pending.turn,
            *([pending.frame] if pending.frame is not None else []),
            on_done=done,
            on_error=failed,
        )

    def _drop_confirmed(self) -> None:
        """Forget answers the log confirmed whose confirmation has not reached the GUI yet."""
        with self._confirmed_lock:
            confirmed = set(self._confirmed)
        self.unsaved = [p for p in self.unsaved if p.turn.request_id not in confirmed]

    def _flush(self) -> None:
        for pending in list(self.unsaved):
            self._commit(pending)

    def review(
        self,
        turn_id: int,
        status: str,
        corrected: str | None = None,
        on_done: Callable[[TurnRow], Any] | None = None,
    ) -> None:
        self.call("saving the review", "review", turn_id, status, corrected, on_done=on_done)

    def set_tags(
        self, turn_id: int, tags: Sequence[str], on_done: Callable[[TurnRow], Any] | None = None
    ) -> None:
        wanted = sorted({t.strip() for t in tags if t.strip()})
        self.call("saving the tags", "set_tags", turn_id, wanted, on_done=on_done)

    # -- shutdown ---------------------------------------------------------------------------

    def close(self, recovery_dir: Path | None = None) -> Path | None:
        """Finish queued calls, retry unsaved answers once, stop the log process. Answers that
        still could not be saved go to a JSONL recovery file, whose path is returned."""
        self._retry.stop()
        self.wait()
        self._drop_confirmed()
        if self.unsaved:
            self._flush()
            self.wait()
            self._drop_confirmed()
        process, self._process = self._process, None
        if process is not None:
            process.close()
        if not self.unsaved:
            return None
        return write_recovery(self.unsaved, recovery_dir or self.path.parent)


def write_recovery(unsaved: Sequence[PendingTurn], folder: Path) -> Path:
    """Unsaved answers as JSON lines in ``folder`` (temp file, fsync, replace)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "unsaved-answers.jsonl"
    lines = []
    if target.exists():
        lines = target.read_text(encoding="utf-8").splitlines()
    for p in unsaved:
        t = p.turn
        lines.append(
            json.dumps(
                {
                    "image_id": p.image_id,
                    "image": str(p.path) if p.path else None,
                    "session_id": p.session_id,
                    "question": t.question,
                    "answer": t.answer,
                    "model": t.model,
                    "template": t.template,
                    "prompts": json.loads(ov.dumps(t.prompts)),
                    "settings": t.settings,
                    "timings": t.timings,
                    "finish_reason": t.finish_reason,
                }
            )
        )
    with atomic_write(target) as fh:
        fh.write("\n".join(lines) + "\n")
    return target
