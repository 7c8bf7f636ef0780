"""Ask every region in one go: of the current image, or of every image of the folder that has
prompts in the log (a draft, or imported regions).

Each region is asked on its own (only that region drawn, ``<region0>`` its referring phrase)
through the one preparation of every door (:func:`vip_model.prepare.prepare_request`), in
batches (:meth:`Engine.batch`), on the engine host's model thread; each answer is logged
exactly as a question asked in the chat is (:func:`app.gui.asking.gui_turn`, source ``gui``,
one new conversation per region). Stopping keeps the answers already given.

:func:`ask_each` is the work, without Qt; :class:`AskAll` runs it and routes the answers.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from PySide6.QtCore import QObject, Signal

import overlays as ov
from app.gui.asking import gui_turn
from app.gui.conversation import settings_for
from app.gui.writer import PendingTurn
from data_gen.qalog.log import TurnRow
from vip_model.engine import Answer, CancelToken, Engine, GenerationSettings, Request
from vip_model.errors import ModelError
from vip_model.prepare import prepare_request

if TYPE_CHECKING:
    from app.gui.chat import ChatPanel
    from app.gui.controller import Studio
    from app.gui.files import FileListModel
    from app.gui.settings import Settings
    from app.gui.workers import AskJob, EngineHost
    from app.gui.writer import LogWriter

DEFAULT_QUESTION = "What is <region0>?"
#: Requests per ``Engine.batch`` call: large enough to batch, small enough to stop promptly.
BATCH = 4


@dataclass(frozen=True)
class AskItem:
    """One region to ask about: the ``index``-th prompt of the image at ``path``."""

    path: Path
    image_id: int | None
    index: int
    prompt: ov.Prompt


@dataclass(frozen=True)
class Asked:
    """What came of one item: its request and answer, or why it could not be asked."""

    item: AskItem
    request: Request | None = None
    refs: tuple[ov.RegionRef, ...] = ()
    answer: Answer | None = None
    error: str | None = None


@dataclass
class AskAllSummary:
    """The end of a run: counts, and each item that could not be asked with the reason."""

    total: int = 0
    images: int = 0
    answered: int = 0
    saved: int = 0
    stopped: bool = False
    failed: str | None = None  # the model failed: the run ended there
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image: region, reason)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        on = f" on {self.images} images" if self.images > 1 else ""
        head = f"{self.answered} of {self.total} region(s){on} answered in {self.seconds:.1f} s"
        if self.stopped:
            head += f"; stopped: {self.total - self.answered - len(self.skipped)} not asked"
        lines = [head, "every answer is in the chat of its image and in the log (source gui)"]
        if self.failed:
            lines.append(f"the model failed: {self.failed}")
        lines += [f"skipped {where}: {why}" for where, why in self.skipped]
        return lines


def items_of(path: Path, image_id: int | None, prompts: Sequence[ov.Prompt]) -> list[AskItem]:
    return [AskItem(path, image_id, i, p) for i, p in enumerate(prompts)]


def ask_each(
    engine: Engine,
    items: Sequence[AskItem],
    question: str,
    settings: GenerationSettings,
    template: str,
    loaded: dict[Path, Image.Image],
    cancel: CancelToken,
    *,
    batch: int = BATCH,
) -> Generator[Asked, None, int]:
    """Ask ``question`` about each item's region alone; yield each :class:`Asked` as its batch
    finishes; return how many were answered. ``loaded`` holds images already decoded (the
    one on screen); others are read here, one image at a time. Stops between batches (and
    the engine within one) once ``cancel`` is set; an answer cut short is not yielded."""
    answered = 0
    current: tuple[Path, Image.Image] | None = None
    for start in range(0, len(items), batch):
        if cancel.cancelled:
            break
        ready: list[tuple[AskItem, Request, tuple[ov.RegionRef, ...]]] = []
        for item in items[start : start + batch]:
            try:
                if item.path in loaded:
                    image = loaded[item.path]
                elif current is not None and current[0] == item.path:
                    image = current[1]
                else:
                    image = ov.load_image(item.path)
                    current = (item.path, image)
                prepared = prepare_request(
                    image, question, (item.prompt,), settings=settings, template=template
                )
            except (OSError, ov.OverlayError, ModelError, ValueError) as exc:
                yield Asked(item, error=str(exc) or type(exc).__name__)
                continue
            ready.append((item, prepared.request, prepared.refs))
        if not ready:
            continue
        answers = engine.batch([request for _, request, _ in ready], cancel)
        for (item, request, refs), answer in zip(ready, answers, strict=True):
            if answer.finish_reason == "cancelled":
                continue  # stopped half-way: not an answer to keep
            answered += 1
            yield Asked(item, request, refs, answer)
    return answered


class AskAll(QObject):
    """Runs :func:`ask_each` on the engine host and puts the answers where they belong: the
    log (each as a chat answer would be), the chat when it is the image on screen, the file
    list's Q&A counts."""

    progress = Signal(int, int, float)  # done, total, seconds left (-1: not known yet)
    answered = Signal(object)  # the stored TurnRow
    finished = Signal(object)  # AskAllSummary
    refused = Signal(str)  # the run could not start: why

    def __init__(
        self,
        *,
        studio: Studio,
        host: EngineHost,
        writer: LogWriter,
        chat: ChatPanel,
        files: FileListModel,
        current_settings: Callable[[], Settings],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.studio, self.host, self.writer = studio, host, writer
        self.chat, self.files, self.current_settings = chat, files, current_settings
        self.job: AskJob | None = None
        self.batch = BATCH
        self.last_path: Path | None = None  # the image of the last region asked
        self.summary = AskAllSummary()
        self._done = 0
        self._started = 0.0

    @property
    def running(self) -> bool:
        return self.job is not None

    def image_items(self) -> list[AskItem]:
        """The regions of the image on screen (as drawn now)."""
        studio = self.studio
        if studio.path is None or studio.doc is None:
            return []
        image_id = studio.state.image.id if studio.state is not None else None
        return items_of(studio.path, image_id, studio.doc.prompts)

    def start_image(self, question: str) -> bool:
        if self.studio.image is None or self.studio.path is None:
            self.refused.emit("open an image first")
            return False
        items = self.image_items()
        if not items:
            self.refused.emit("this image has no regions: draw some first")
            return False
        return self.start(question, items)

    def start_folder(self, question: str) -> None:
        """Every image of the list with prompts in the log; the image on screen as drawn now
        (its draft may be a moment behind). Starts once the log has answered."""
        self.studio.flush()
        on_screen = self.image_items()

        def found(rows: list[tuple[Path, int, list[ov.Prompt]]]) -> None:
            items: list[AskItem] = []
            for path, image_id, prompts in rows:
                if path != self.studio.path:
                    items += items_of(path, image_id, prompts)
            items += on_screen
            if not items:
                self.refused.emit(
                    "no image of this folder has regions in the log: draw some (they are "
                    "saved as drafts) or import annotations first"
                )
                return
            order = {p: i for i, p in enumerate(self.files.paths)}
            items.sort(key=lambda it: (order.get(it.path, -1), it.index))
            self.start(question, items)

        def failed(exc: Exception) -> None:
            self.refused.emit(f"cannot read the drafts in the log: {exc}")

        self.writer.prompted_images(self.files.paths, found, failed)

    def start(self, question: str, items: Sequence[AskItem]) -> bool:
        """Ask ``question`` about each item; False (``refused`` says why) if it cannot start."""
        if self.job is not None:
            self.refused.emit("already asking: stop it first")
            return False
        if self.host.engine is None:
            self.refused.emit("no model is ready: load one first (see the chat panel)")
            return False
        try:  # a question naming <region1> cannot be asked of one region: say so now
            ov.compose_question(question, [items[0].prompt])
        except ov.OverlayError as exc:
            self.refused.emit(f"{exc} (each region is asked alone: it is <region0>)")
            return False
        settings = self.current_settings()
        loaded: dict[Path, Image.Image] = {}
        if self.studio.path is not None and self.studio.image is not None:
            loaded[self.studio.path] = self.studio.image
        self.summary = AskAllSummary(total=len(items), images=len({i.path for i in items}))
        self._done, self._started = 0, time.perf_counter()
        job = self.host.run(
            functools.partial(ask_each, batch=self.batch),
            list(items),
            question,
            settings_for(settings.generation),
            settings.template,
            loaded,
            detail=f"asking every region: 0/{len(items)}",
            on_yield=self._one,
            on_return=lambda _n: None,
            on_error=self._failed,
            on_finish=self._finished,
        )
        if job is None:
            self.refused.emit("the model is busy: stop the answer in progress first")
            return False
        self.job = job
        self.progress.emit(0, len(items), -1.0)
        return True

    def stop(self) -> None:
        """Stop promptly: the batch in the model is cut short; answers given are kept."""
        if self.job is not None:
            self.summary.stopped = True
            self.job.stop()

    def _one(self, asked: Asked) -> None:
        summary = self.summary
        self._done += 1
        item = asked.item
        self.last_path = item.path
        if asked.error is not None or asked.request is None or asked.answer is None:
            summary.skipped.append((f"{item.path.name}: region {item.index}", asked.error or ""))
        else:
            summary.answered += 1
            self._log(asked)
        elapsed = time.perf_counter() - self._started
        left = elapsed / self._done * (summary.total - self._done) if self._done else -1.0
        self.host.working(f"asking every region: {self._done}/{summary.total}")
        self.progress.emit(self._done, summary.total, left)

    def _log(self, asked: Asked) -> None:
        assert asked.request is not None and asked.answer is not None
        item = asked.item
        turn = gui_turn(asked.request, asked.answer, asked.refs, self.host.spec)

        def saved(row: TurnRow) -> None:
            self.summary.saved += 1
            if self.studio.path == item.path:
                self.studio.stored(row)  # the image's Q&A count
                self.chat.stored(None, row)  # a card to review
                self.chat.set_generating(self.job is not None)  # stored() ends "generating"
            else:
                n, reviewed = self.files.statuses.get(str(item.path), (0, 0))
                self.files.set_status(item.path, (n + 1, reviewed))
            self.answered.emit(row)

        self.writer.commit_turn(PendingTurn(item.image_id, None, turn, saved, path=item.path))

    def _failed(self, exc: BaseException) -> None:
        self.summary.failed = str(exc) or type(exc).__name__

    def _finished(self) -> None:
        if self.job is not None and self.job.cancel.cancelled:
            self.summary.stopped = True  # also by the chat's Stop
        self.job = None
        self.summary.seconds = time.perf_counter() - self._started
        self.finished.emit(self.summary)
