"""The single writer of the Q&A log: every log call of the app goes through it.

It runs the calls on one background thread, in the order they were made, so the GUI never waits
on SQLite (a locked database can block for seconds). Finished answers are kept in memory until
they are committed; a failed commit is retried, and whatever is still unsaved at exit is written
to a recovery file rather than lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

import overlays as ov
from app.gui.threads import run_in_thread, serial_pool
from app.log import ImageRow, LogError, NewTurn, QALog, TurnRow, default_db_path
from app.safe_write import atomic_write

RETRY_MS = 3000


@dataclass
class PendingTurn:
    """A finished answer waiting to be committed. ``session_id`` None starts a session;
    ``image_id`` None registers ``path`` first."""

    image_id: int | None
    session_id: int | None
    turn: NewTurn
    on_saved: Callable[[int, int], Any] | None = None
    path: Path | None = None
    attempts: int = 0


@dataclass(frozen=True)
class ImageState:
    """What the log knows about one image: its row, its turns, its draft."""

    image: ImageRow
    turns: list[TurnRow]
    draft: tuple[list[ov.Prompt], str, int | None] | None = None
    statuses: dict[str, tuple[int, int]] = field(default_factory=dict)


class LogWriter(QObject):
    """Owns the log connection; ``error`` reports failures (the app shows them, goes on)."""

    error = Signal(str)
    status = Signal(str)

    def __init__(
        self, path: Path | None = None, busy_timeout_s: float = 5.0, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.path = Path(path) if path else default_db_path()
        self.busy_timeout_s = busy_timeout_s
        self._pool = serial_pool("log")
        self._log: QALog | None = None
        self.unsaved: list[PendingTurn] = []
        self._retry = QTimer(self, singleShot=True, interval=RETRY_MS)
        self._retry.timeout.connect(self._flush)

    # -- plumbing ---------------------------------------------------------------------------

    def _with_log(self, fn: Callable[[QALog], Any]) -> Callable[[], Any]:
        def job() -> Any:
            if self._log is None:
                self._log = QALog.open(self.path, busy_timeout_s=self.busy_timeout_s)
            return fn(self._log)

        return job

    def submit(
        self,
        what: str,
        fn: Callable[[QALog], Any],
        on_done: Callable[[Any], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
    ) -> None:
        """Run ``fn(log)`` on the log thread; report failure as ``"{what}: {message}"``."""

        def failed(exc: Exception) -> None:
            message = str(exc) if isinstance(exc, LogError | ov.OverlayError) else repr(exc)
            self.error.emit(f"{what}: {message}")
            if on_error is not None:
                on_error(exc)

        run_in_thread(
            self._with_log(fn), owner=self, pool=self._pool, on_return=on_done, on_error=failed
        )

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until every queued call ran (tests, and once at exit)."""
        return self._pool.waitForDone(timeout_ms)

    # -- reading ----------------------------------------------------------------------------

    def open_image(self, path: Path, on_done: Callable[[ImageState | None], Any]) -> None:
        """Register ``path`` (by content hash) and read back its turns and draft; None for a
        file that is not a readable image (the canvas reports that)."""

        def job(log: QALog) -> ImageState | None:
            try:
                row = log.add_image(path)
            except ov.ImageError:
                return None
            return ImageState(row, log.turns(image_id=row.id), log.load_draft(row.id))

        self.submit(f"reading the log for {path.name}", job, on_done)

    def turns(self, image_id: int, on_done: Callable[[list[TurnRow]], Any]) -> None:
        self.submit("reading the log", lambda log: log.turns(image_id=image_id), on_done)

    def statuses(self, on_done: Callable[[dict[str, tuple[int, int]]], Any]) -> None:
        """Per image path: (number of turns, number reviewed), for the file list's filters."""

        def job(log: QALog) -> dict[str, tuple[int, int]]:
            return log.image_statuses()

        self.submit("reading the log", job, on_done)

    # -- writing ----------------------------------------------------------------------------

    def save_draft(
        self, image_id: int, prompts: Sequence[ov.Prompt], question: str, session_id: int | None
    ) -> None:
        prompts = list(prompts)
        self.submit(
            "autosaving the drawing",
            lambda log: log.save_draft(image_id, prompts, question, session_id),
            lambda _: self.status.emit("draft saved"),
        )

    def commit_turn(self, pending: PendingTurn) -> None:
        """Commit a finished answer now; keep and retry it until it is saved."""
        self.unsaved.append(pending)
        self._commit(pending)

    def _commit(self, pending: PendingTurn) -> None:
        def job(log: QALog) -> tuple[int, int]:
            if pending.image_id is None:
                if pending.path is None:
                    raise LogError("an answer without its image cannot be saved")
                pending.image_id = log.add_image(pending.path).id
            session = pending.session_id
            if session is None:
                session = log.start_session(pending.image_id, source="gui")
                pending.session_id = session  # a retry must not start a second session
            pending.turn.session_id = session
            return log.add_turn(pending.turn), session

        def done(result: tuple[int, int]) -> None:
            if pending in self.unsaved:
                self.unsaved.remove(pending)
            self.status.emit("answer saved to the log")
            if pending.on_saved is not None:
                pending.on_saved(*result)

        def failed(exc: Exception) -> None:
            pending.attempts += 1
            self.status.emit(f"{len(self.unsaved)} answer(s) not saved yet: retrying")
            self._retry.start()

        self.submit("saving the answer", job, done, failed)

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
        def job(log: QALog) -> TurnRow:
            log.review(turn_id, status, corrected)  # type: ignore[arg-type]
            return log.turn(turn_id)

        self.submit("saving the review", job, on_done)

    def set_tags(
        self, turn_id: int, tags: Sequence[str], on_done: Callable[[TurnRow], Any] | None = None
    ) -> None:
        wanted = sorted({t.strip() for t in tags if t.strip()})

        def job(log: QALog) -> TurnRow:
            current = set(log.turn(turn_id).tags)
            if remove := sorted(current - set(wanted)):
                log.tag(turn_id, remove, remove=True)
            if add := sorted(set(wanted) - current):
                log.tag(turn_id, add)
            return log.turn(turn_id)

        self.submit("saving the tags", job, on_done)

    # -- shutdown ---------------------------------------------------------------------------

    def close(self, recovery_dir: Path | None = None) -> Path | None:
        """Finish queued calls, retry unsaved answers once, close the log. Answers that still
        could not be saved go to a JSONL recovery file, whose path is returned."""
        self._retry.stop()
        self.wait()
        if self.unsaved:
            self._flush()
            self.wait()
        log, self._log = self._log, None
        if log is not None:
            log.close()
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
