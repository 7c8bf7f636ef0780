"""Box → mask in the desktop app: the person drags a box (the assist tool) or picks a
rectangle, and gets a mask prompt of the object inside, as one undoable edit.

The work is :func:`find_mask`, a plain function over ``overlays.assist`` (GrabCut) and
``vip_model.segment`` (SAM / SAM 2, loaded once from the folder in the settings); it runs on
its own one-thread pool (:mod:`app.gui.threads`) while a busy bar shows beside the method
chooser. When it returns, the mask is added (or replaces the rectangle it came from) only if
that image's document is still the one shown and unchanged where it matters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QWidget,
)

import overlays as ov
from app.gui.canvas import Canvas
from app.gui.document import AddPrompt, PromptDocument
from app.gui.items import PreviewItem
from app.gui.threads import run_in_thread, serial_pool

if TYPE_CHECKING:  # torch and transformers load with the first SAM box, not with the app
    from vip_model.segment import Segmenter

METHOD_LABELS = {"grabcut": "GrabCut (offline)", "sam": "SAM / SAM 2…"}
METHOD_NAMES = {"grabcut": "GrabCut", "sam": "SAM"}
#: Words of the undo entry ("Undo box → mask").
UNDO_TEXT = "box →"


class SegmenterCache:
    """The SAM / SAM 2 model of one folder, loaded on first use and kept (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: str | None = None
        self._segmenter: Segmenter | None = None

    def get(self, folder: str) -> Segmenter:
        from vip_model.segment import load_segmenter

        with self._lock:
            if self._folder != folder:
                self._segmenter, self._folder = None, None
                self._segmenter = load_segmenter(folder, device="auto")
                self._folder = folder
            assert self._segmenter is not None
            return self._segmenter


def find_mask(
    method: str,
    image: Image.Image,
    box: ov.Box,
    style: ov.Style,
    label: str | None,
    sam_folder: str,
    cache: SegmenterCache,
) -> ov.Mask:
    """The mask of the object in ``box`` by ``method`` (``grabcut`` or ``sam``). Runs off the
    GUI thread; raises the core's named errors."""
    # OpenCV loads with the first box, not with the window (launch stays light).
    from overlays.assist import AssistError, box_to_mask

    if method == "sam":
        if not sam_folder.strip():
            raise AssistError(
                "no SAM model folder is set: choose one (Box → mask method: SAM / SAM 2…) or "
                "use GrabCut"
            )
        return cache.get(sam_folder.strip()).box_to_mask(image, box, style=style, label=label)
    return box_to_mask(image, box, style=style, label=label)


@dataclass
class Job:
    """A box being turned into a mask: where the result goes when it arrives."""

    doc: PromptDocument
    box_prompt: ov.Prompt
    #: The rectangle this mask replaces (its index and the prompt then), or None to add.
    replace: tuple[int, ov.Prompt] | None


class AssistPanel(QWidget):
    """The method chooser and the busy bar, shown in the tools' toolbar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = QComboBox()
        for key, text in METHOD_LABELS.items():
            self.method.addItem(text, key)
        self.method.setToolTip("How Box → mask finds the object (G: draw a box)")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(70)
        self.busy.setMaximumHeight(14)
        self.busy.setToolTip("Box → mask is working")
        keep = self.busy.sizePolicy()
        keep.setRetainSizeWhenHidden(True)  # showing it must not shift the toolbar
        self.busy.setSizePolicy(keep)
        self.busy.setVisible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("via"))  # beside the tool: "Box → mask via GrabCut"
        layout.addWidget(self.method)
        layout.addWidget(self.busy)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)

    def current(self) -> str:
        return str(self.method.currentData())

    def set_current(self, method: str) -> None:
        index = self.method.findData(method)
        if index >= 0:
            self.method.setCurrentIndex(index)


class BoxAssist(QObject):
    """Runs box → mask for the window. Collaborators are passed in: the current image and
    document, the settings (method, SAM folder), and where to report."""

    #: A job ended: ``done(message)``; the message is empty when the mask was applied.
    done = Signal(str)

    def __init__(
        self,
        panel: AssistPanel,
        image: Callable[[], Image.Image | None],
        document: Callable[[], PromptDocument | None],
        sam_folder: Callable[[], str],
        notify: Callable[[str], None],
        error: Callable[[str], None],
        show_box: Callable[[ov.Prompt | None], None] = lambda _box: None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.panel = panel
        self._image, self._document, self._sam_folder = image, document, sam_folder
        self._notify, self._error, self._show_box = notify, error, show_box
        self.cache = SegmenterCache()
        self.pool = serial_pool("box-to-mask")
        self.job: Job | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None

    def request(self, box_prompt: ov.Prompt, replace_index: int | None = None) -> bool:
        """Start finding the object in ``box_prompt``'s box; False (with a message) if it
        cannot start now."""
        doc, image = self._document(), self._image()
        if doc is None or image is None:
            self._finish("Box → mask: open an image first")
            return False
        if self.job is not None:
            self._notify("Box → mask is still working on the previous box")
            return False
        replace = None
        if replace_index is not None and 0 <= replace_index < len(doc.prompts):
            replace = (replace_index, doc.prompts[replace_index])
        self.job = Job(doc, box_prompt, replace)
        method = self.panel.current()
        self.panel.busy.setVisible(True)
        self._show_box(box_prompt)  # the box stays on screen while the mask is found
        self._notify(f"Box → mask with {METHOD_NAMES[method]}…")
        run_in_thread(
            find_mask,
            method,
            image,
            box_prompt.marked_region().box,
            box_prompt.style,
            box_prompt.label,
            self._sam_folder(),
            self.cache,
            owner=self,
            pool=self.pool,
            on_return=self._returned,
            on_error=self._errored,
        )
        return True

    def convert_selected(self) -> bool:
        """Box → mask on the selected rectangle (or ellipse): the mask replaces it."""
        doc = self._document()
        prompt = doc.selected_prompt() if doc else None
        if doc is None or doc.selected is None or not isinstance(prompt, ov.Rectangle | ov.Ellipse):
            self._finish("Box → mask: select a rectangle first, or draw a box with the tool (G)")
            return False
        return self.request(prompt, doc.selected)

    def _returned(self, mask: ov.Mask) -> None:
        job, self.job = self.job, None
        self._idle()
        if job is None or job.doc is not self._document():
            self._finish("Box → mask: the image changed meanwhile; the mask was dropped")
            return
        doc = job.doc
        if job.replace is not None:
            index, before = job.replace
            if index < len(doc.prompts) and doc.prompts[index] is before:
                doc.replace_at(index, mask, UNDO_TEXT)
                self._finish("")
                return
        doc.undo_stack.push(AddPrompt(doc, mask, len(doc.prompts), UNDO_TEXT))
        self._finish("")

    def _idle(self) -> None:
        self.panel.busy.setVisible(False)
        self._show_box(None)

    def _errored(self, exc: Exception) -> None:
        self.job = None
        self._idle()
        known = isinstance(exc, ov.OverlayError) or type(exc).__module__.startswith("vip_model")
        text = str(exc) if known else f"{type(exc).__name__}: {exc}"
        self._finish(f"Box → mask: {text}", error=True)

    def _finish(self, message: str, *, error: bool = False) -> None:
        if message:
            (self._error if error else self._notify)(message)
        else:
            self._notify("Box → mask: done (Ctrl+Z undoes it)")
        self.done.emit(message)


def pending_box_on(canvas: Canvas) -> Callable[[ov.Prompt | None], None]:
    """Show (or, with None, hide) a box on ``canvas`` while its mask is being found."""
    item = PreviewItem()
    item.setOpacity(0.7)
    canvas.scene().addItem(item)

    def show(box: ov.Prompt | None) -> None:
        item.set_prompt(box, canvas.image_size or (1, 1))
        item.update()

    return show
