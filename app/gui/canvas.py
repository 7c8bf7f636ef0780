"""The canvas: shows the exact composite, zooms and pans, and feeds mouse events to the tools.

Scene coordinates are image pixels. Tools (``app.gui.tools``) turn events into edits; the
canvas applies them to the document as undo commands and asks the render thread for the new
composite. While a shape is being drawn or dragged it is painted as vectors; the exact
composite replaces the vectors as soon as it is ready.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QMenu, QWidget

import overlays as ov
from app.gui import geometry as geo
from app.gui import vertices as vx
from app.gui.document import PromptDocument, apply_edits
from app.gui.items import BandItem, CompositeItem, GuideItem, PreviewItem, SelectionItem
from app.gui.renderer import Frame, Loaded, Renderer, fit_scale
from app.gui.select_tool import SelectTool
from app.gui.tools import Edit, Tool, ToolContext, make_tool

#: (tool name, prompts) -> (style, point radius in model units, brush radius in pixels)
PenSource = Callable[[str, list[ov.Prompt], tuple[int, int]], tuple[ov.Style, float, float]]

MIN_ZOOM, MAX_ZOOM = 0.01, 64.0


def _default_pen(
    tool: str, prompts: list[ov.Prompt], size: tuple[int, int]
) -> tuple[ov.Style, float, float]:
    return ov.Style(), 8.0, 10.0 * ov.scale_of(size)


class Canvas(QGraphicsView):
    """The image view and drawing surface."""

    image_loaded = Signal(object)
    image_failed = Signal(str)
    zoom_changed = Signal(float)
    cursor_moved = Signal(float, float)
    painted = Signal()
    notice = Signal(str)
    #: A box for box → mask (the assist tool's rectangle): ``app.gui.assist`` takes it from here.
    assist_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setBackgroundBrush(QColor(60, 60, 64))
        self.composite = CompositeItem()
        self.selection = SelectionItem()
        self.guide = GuideItem()
        self.live = PreviewItem()
        self.model_item = QGraphicsPixmapItem()
        self.band = BandItem()
        items = (self.composite, self.selection, self.guide, self.live, self.model_item, self.band)
        for item in items:
            self.scene().addItem(item)
        self.model_item.setVisible(False)
        self.renderer = Renderer(self)
        self.renderer.frame.connect(self._on_frame)
        self.renderer.loaded.connect(self._on_loaded)
        self.renderer.failed.connect(self._on_failed)
        self.renderer.model_view.connect(self._on_model_view)
        self.renderer.error.connect(self.notice)
        self.pen_source: PenSource = _default_pen
        #: Brush strokes away from the selected mask join it (the "Add to mask" toggle).
        self.add_to_mask = False
        #: The label new shapes get (keys 1–9 with nothing selected); None: no label.
        self.new_label: str | None = None
        self.doc: PromptDocument | None = None
        self.path: Path | None = None
        self.image_size: tuple[int, int] | None = None
        self.tool: Tool = make_tool("rectangle")
        self.message = "Open an image or a folder (Ctrl+O, Ctrl+Shift+O)"
        self.model_view = False
        self.fit_mode = True
        self.paint_count = 0
        self.frame: Frame | None = None
        self._pending: list[tuple[int, PreviewItem]] = []
        #: The prompts hidden from the composite while they are moved (drawn as vectors).
        self._lifted: frozenset[int] | None = None
        self._pan_from: QPointF | None = None
        self._space = False
        self._rescale = QTimer(self, singleShot=True, interval=60)
        self._rescale.timeout.connect(lambda: self.renderer.rescale(self._lod_scale()))

    # -- image and document ---------------------------------------------------------------

    def open_image(self, path: Path) -> None:
        """Start showing ``path`` (decoded off the GUI thread); the old image stays until then."""
        self.path = path
        self.tool.cancel()
        self._clear_pending()
        self._lifted = None
        self.fit_mode = True
        self.image_size = None  # no drawing until the new image's first frame
        self.renderer.open(path, self._viewport_size(), self.devicePixelRatioF())

    def show_frame(self, path: Path, decode: Callable[[], Image.Image]) -> int:
        """Show a video frame (``decode()`` runs on the render thread) with the document's
        prompts; the zoom and the tool stay (a frame step is not a new image). Returns the
        token of the frame's ``image_loaded``."""
        self.path = path
        self.tool.cancel()
        self._clear_pending()
        self._lifted = None
        prompts = list(self.doc.prompts) if self.doc is not None else []
        self._video_token = self.renderer.open_frame(path, decode, prompts, self._lod_scale())
        return self._video_token

    #: The token of the last video frame asked for: it arrives composited, at the same size.
    _video_token: int | None = None

    def set_document(self, doc: PromptDocument | None) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self._on_doc_changed)
            self.doc.selection_changed.disconnect(self._sync_selection)
        self.doc = doc
        self.tool.cancel()
        if doc is not None:
            doc.changed.connect(self._on_doc_changed)
            doc.selection_changed.connect(self._sync_selection)
            if self.image_size is not None and doc.image_size == self.image_size:
                self._request_render()
        self._sync()

    def _on_loaded(self, loaded: Loaded) -> None:
        self.image_size = loaded.image.size
        self.message = ""
        if self.doc is not None:
            self.doc.image_size = self.image_size
        self.image_loaded.emit(loaded)
        if self.doc is not None and self.doc.prompts and loaded.token != self._video_token:
            self._request_render()

    def _on_failed(self, token: int, message: str) -> None:
        self.image_size = None
        self.frame = None
        self.composite.set_frame(None)
        self.message = message
        self._sync()
        self.viewport().update()
        self.image_failed.emit(message)

    def _on_frame(self, frame: Frame) -> None:
        first = self.frame is None or self.frame.token != frame.token
        if first and frame.token == self._video_token and self.frame is not None:
            # The next frame of the same video: same size, same view (no refit per step).
            first = self.frame.size != frame.size
        self.frame = frame
        if first:
            if not self.model_view:
                self.setSceneRect(QRectF(0, 0, *frame.size))
            self.image_size = frame.size
            self.message = ""
            if self.doc is not None:
                self.doc.image_size = frame.size
            if self.fit_mode:
                self.fit()
        self.composite.set_frame(frame)
        while self._pending and self._pending[0][0] <= frame.version:
            self.scene().removeItem(self._pending.pop(0)[1])
        if self.model_view:
            self.renderer.request_model_view()

    def _on_doc_changed(self) -> None:
        self._lifted = None
        version = self._request_render()
        # Keep the vectors of a just-finished edit on screen until its composite arrives.
        if version is not None and self.live.prompts and not self.tool.busy:
            keep = PreviewItem()
            keep.set_prompts(self.live.prompts, self.live.image_size)
            self.scene().addItem(keep)
            self._pending.append((version, keep))
        self._sync()

    def _request_render(self, skip: frozenset[int] = frozenset()) -> int | None:
        if self.doc is None or self.image_size is None:
            return None
        prompts = [p for i, p in enumerate(self.doc.prompts) if i not in skip]
        return self.renderer.render(prompts, self._lod_scale())

    def _clear_pending(self) -> None:
        for _, item in self._pending:
            self.scene().removeItem(item)
        self._pending.clear()
        self.live.set_prompt(None, (1, 1))

    # -- tools ------------------------------------------------------------------------------

    def set_tool(self, name: str) -> None:
        self.tool.cancel()
        self.tool = make_tool(name)
        self._sync()

    def context(self, modifiers: Qt.KeyboardModifier | None = None) -> ToolContext:
        """What the tool needs at an event; ``modifiers`` are the keys held during it."""
        assert self.image_size is not None
        prompts = list(self.doc.prompts) if self.doc else []
        style, radius, brush = self.pen_source(self.tool.name, prompts, self.image_size)
        mods = modifiers if modifiers is not None else Qt.KeyboardModifier.NoModifier
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        return ToolContext(
            image_size=self.image_size,
            style=style,
            prompts=prompts,
            selected=self.doc.selected if self.doc else None,
            tolerance=6.0 / self.zoom,
            point_radius=radius,
            brush_radius=brush,
            add_to_mask=self.add_to_mask,
            selection=self.doc.selected_indices() if self.doc else (),
            constrain=shift,
            toggle=shift or bool(mods & Qt.KeyboardModifier.ControlModifier),
        )

    def _apply(self, edits: list[Edit]) -> None:
        if self.doc is None or self.image_size is None:
            return
        for edit in edits:
            if edit.op == "assist" and edit.prompt is not None:  # box → mask, off the GUI thread
                self.assist_requested.emit(edit.prompt)
        edits = [e for e in edits if e.op != "assist"]
        text = "move" if self.tool.name == "select" else "paint"
        for message in apply_edits(self.doc, edits, self.image_size, text, self.new_label):
            self.notice.emit(message)

    def _drawing_enabled(self) -> bool:
        return self.doc is not None and self.image_size is not None and not self.model_view

    def _sync(self) -> None:
        """Bring the vector items in line with the tool and the document."""
        size = self.image_size or (1, 1)
        self.live.set_prompt(self.tool.preview, size)
        prompts = list(self.doc.prompts) if self.doc else []
        color = QColor(*self.pen_source(self.tool.name, prompts, size)[0].rgb)
        self.guide.set_points(
            self.tool.guide if self.tool.name != "scribble" else [], color, 6.0 / self.zoom
        )
        moving = self.tool.moving()
        if moving:
            self.live.set_prompts(list(moving.values()), size)
            if self._lifted != frozenset(moving):
                self._lifted = frozenset(moving)
                self._request_render(skip=self._lifted)
        self.band.set_box(self.tool.band)
        self._sync_selection()

    def _sync_selection(self, *_: object) -> None:
        prompt, others, vertex = None, [], None
        doc = self.doc
        if doc is not None and not self.model_view and doc.selected is not None:
            moving = self.tool.moving()
            prompt = moving.get(doc.selected, doc.selected_prompt())
            others = [
                geo.bounds(moving.get(i, doc.prompts[i]))
                for i in doc.selected_indices()
                if i != doc.selected and i < len(doc.prompts)
            ]
            chosen = self.selected_vertex()
            if chosen is not None and prompt is not None:
                vertex = vx.point_of(prompt, chosen[1])
        self.selection.set_prompt(prompt, 8.0 / self.zoom, others, vertex)

    def selected_vertex(self) -> tuple[int, vx.Vertex] | None:
        """(prompt index, vertex) that Delete would remove, if a vertex is selected."""
        tool = self.tool
        if not isinstance(tool, SelectTool) or self.doc is None or self.image_size is None:
            return None
        return tool.selected_vertex(self.context())

    def delete_selection(self) -> None:
        """Delete: the selected vertex if there is one, else every selected prompt."""
        if self.selected_vertex() is not None and isinstance(self.tool, SelectTool):
            self._apply(self.tool.delete_vertex(self.context()))
            self._sync()
        elif self.doc is not None:
            self.doc.delete()

    def context_actions(self, pt: tuple[float, float]) -> list[tuple[str, Callable[[], None]]]:
        """The right-click menu of the select tool at ``pt`` (image pixels): delete the vertex
        under the pointer, or add one on the edge under it."""
        tool = self.tool
        if not isinstance(tool, SelectTool) or not self._drawing_enabled():
            return []
        ctx = self.context()
        if tool.pick_vertex(ctx, pt) is not None:
            self._sync()
            return [("Delete point", self.delete_selection)]
        index = ctx.selected
        if (
            index is not None
            and vx.has_vertices(ctx.prompts[index])
            and vx.edge_at(ctx.prompts[index], pt, ctx.tolerance * 1.5) is not None
        ):

            def add() -> None:
                self._apply(tool.add_vertex(self.context(), pt))
                self._sync()

            return [("Add point here", add)]
        return []

    # -- mouse and keys ---------------------------------------------------------------------

    def _scene_pt(self, event: QMouseEvent) -> tuple[float, float]:
        p = self.mapToScene(event.position().toPoint())
        return (p.x(), p.y())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if not self._drawing_enabled():
            return
        pt = self._scene_pt(event)
        if button == Qt.MouseButton.RightButton and self.tool.name in ("mask", "contour"):
            self._apply(self.tool.finish(self.context()))
        elif button == Qt.MouseButton.RightButton and isinstance(self.tool, SelectTool):
            self._context_menu(pt, event.globalPosition().toPoint())
        elif button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            alt = button == Qt.MouseButton.RightButton or bool(
                event.modifiers() & Qt.KeyboardModifier.AltModifier
            )
            self._apply(self.tool.press(self.context(event.modifiers()), pt, alt=alt))
        self._sync()

    def _context_menu(self, pt: tuple[float, float], where: QPoint) -> None:
        entries = self.context_actions(pt)
        if entries:
            menu = QMenu(self)
            for text, slot in entries:
                menu.addAction(text, slot)
            menu.exec(where)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        pt = self._scene_pt(event)
        self.cursor_moved.emit(*pt)
        self.selection.set_hover(pt)
        if not self._drawing_enabled():
            return
        dragging = bool(event.buttons() & (Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton))
        self._apply(self.tool.move(self.context(event.modifiers()), pt, dragging=dragging))
        self._sync()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().setCursor(
                Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.CrossCursor
            )
            return
        if not self._drawing_enabled():
            return
        lifted = self._lifted
        edits = self.tool.release(self.context(event.modifiers()), self._scene_pt(event))
        self._apply(edits)
        if lifted is not None and self._lifted == lifted:  # nothing changed after all
            self._lifted = None
            self._request_render()
        self._sync()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._drawing_enabled() and event.button() == Qt.MouseButton.LeftButton:
            self._apply(self.tool.double_click(self.context(), self._scene_pt(event)))
            self._sync()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif key == Qt.Key.Key_Escape and self.tool.busy:
            self.tool.cancel()
            if self._lifted is not None:
                self._lifted = None
                self._request_render()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.image_size is not None:
            self._apply(self.tool.finish(self.context()))
        elif key == Qt.Key.Key_Backspace and self.tool.guide and self.image_size is not None:
            self.tool.undo_vertex(self.context())
        elif key == Qt.Key.Key_Backspace and self.selected_vertex() is not None:
            self.delete_selection()
        elif key == Qt.Key.Key_Escape and isinstance(self.tool, SelectTool) and self.tool.vertex:
            self.tool.vertex = None
        else:
            super().keyPressEvent(event)
            return
        self._sync()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        super().keyReleaseEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25**steps, event.position())

    # -- zoom -------------------------------------------------------------------------------

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def _viewport_size(self) -> tuple[int, int]:
        vp = self.viewport().size()
        return (vp.width(), vp.height())

    def _lod_scale(self) -> float:
        return self.zoom * self.devicePixelRatioF()

    def set_zoom(self, scale: float, anchor: QPointF | None = None) -> None:
        scale = min(max(scale, MIN_ZOOM), MAX_ZOOM)
        center = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        before = self.mapToScene(center.toPoint())
        self.setTransform(QTransform.fromScale(scale, scale))
        after = self.mapToScene(center.toPoint())
        delta = after - before
        self.translate(delta.x(), delta.y())
        self._rescale.start()
        self._sync()
        self.zoom_changed.emit(scale)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.fit_mode = False
        self.set_zoom(self.zoom * factor, anchor)

    def fit(self) -> None:
        size = self.model_size() or self.image_size
        if size is None:
            return
        self.fit_mode = True
        scale = fit_scale(size, self._viewport_size())
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(size[0] / 2, size[1] / 2)
        self._rescale.start()
        self._sync()
        self.zoom_changed.emit(self.zoom)

    def actual_size(self) -> None:
        self.fit_mode = False
        self.set_zoom(1.0)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.fit_mode:
            self.fit()

    # -- model view -------------------------------------------------------------------------

    def model_size(self) -> tuple[int, int] | None:
        return (336, 336) if self.model_view else None

    def set_model_view(self, on: bool) -> None:
        """Show the model's padded 336×336 view instead of the image (drawing is paused)."""
        self.model_view = on
        self.tool.cancel()
        self.composite.setVisible(not on)
        self.model_item.setVisible(on)
        for item in (self.live, self.guide, self.selection, self.band):
            item.setVisible(not on)
        if on:
            self.renderer.request_model_view()
            self.setSceneRect(QRectF(0, 0, 336, 336))
        elif self.image_size is not None:
            self.setSceneRect(QRectF(0, 0, *self.image_size))
        self.fit()

    def _on_model_view(self, token: int, image: object) -> None:
        from PySide6.QtGui import QImage

        if isinstance(image, QImage):
            self.model_item.setPixmap(QPixmap.fromImage(image))

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        self.paint_count += 1
        self.painted.emit()

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        if not self.message:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(235, 235, 235))
        area = self.viewport().rect().adjusted(40, 40, -40, -40)
        painter.drawText(
            area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message
        )
        painter.restore()
