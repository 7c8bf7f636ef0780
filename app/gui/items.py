"""Graphics items of the canvas: the exact composite, vector previews, selection handles.

The scene's coordinates are image pixels. The composite item paints what the render thread
produced; the preview item paints a prompt being drawn or edited with QPainter, compiled from the
same primitives ``overlays`` uses (same colour, alpha and pixel width), until the exact
composite arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

import overlays as ov
from app.gui import geometry as geo
from app.gui import vertices as vx
from app.gui.renderer import LOD_BELOW, Frame
from overlays.render import Op, compile_prompt

Z_IMAGE, Z_PREVIEW, Z_GUIDE, Z_SELECTION = 0, 10, 20, 30


class CompositeItem(QGraphicsItem):
    """The rendered image: a downscaled copy at low zoom, the full composite otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.frame: Frame | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setZValue(Z_IMAGE)

    def set_frame(self, frame: Frame | None) -> None:
        old = self.frame
        if (old.size if old else None) != (frame.size if frame else None):
            self.prepareGeometryChange()
        self.frame = frame
        same_layout = (
            old is not None
            and frame is not None
            and old.token == frame.token  # another image of the same size: repaint it all
            and old.lod_size == frame.lod_size
            and (old.full is None) == (frame.full is None)
        )
        if not same_layout:
            self.update()
        elif frame is not None and frame.dirty is not None:
            x0, y0, x1, y1 = frame.dirty
            self.update(QRectF(x0 - 2, y0 - 2, x1 - x0 + 4, y1 - y0 + 4))

    def boundingRect(self) -> QRectF:
        if self.frame is None:
            return QRectF()
        w, h = self.frame.size
        return QRectF(0, 0, w, h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        frame = self.frame
        if frame is None:
            return
        w, h = frame.size
        scale = painter.worldTransform().m11()
        exposed = option.exposedRect.intersected(QRectF(0, 0, w, h))
        if frame.lod is not None and frame.lod_size and (frame.full is None or scale < LOD_BELOW):
            lw, lh = frame.lod_size
            sx, sy = lw / w, lh / h
            source = QRectF(
                exposed.x() * sx, exposed.y() * sy, exposed.width() * sx, exposed.height() * sy
            )
            dpr = painter.device().devicePixelRatio()
            if abs(scale * dpr / sx - 1) < 0.01:
                # The copy is at the screen's scale: a plain blit, no resampling per frame.
                origin = painter.worldTransform().map(QPointF(0, 0))
                lod = QImage(frame.lod)  # shares the pixels; only the metadata differs
                lod.setDevicePixelRatio(dpr)
                painter.save()
                painter.resetTransform()
                x = (round(origin.x() * dpr) + source.x()) / dpr
                y = (round(origin.y() * dpr) + source.y()) / dpr
                painter.drawImage(QPointF(x, y), lod, source)
                painter.restore()
                return
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(exposed, frame.lod, source)
            return
        if frame.full is not None:
            smooth = scale < 2.0
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            painter.drawImage(exposed, frame.full, exposed)


def _color(prompt: ov.Prompt) -> QColor:
    r, g, b, a = prompt.style.rgba
    return QColor(r, g, b, a)


def _op_pen(op: Op, color: QColor) -> QPen:
    if op.name == "outline":
        return QPen(
            color,
            2 * op.dilate + 1,
            Qt.PenStyle.SolidLine,
            Qt.PenCapStyle.SquareCap,
            Qt.PenJoinStyle.MiterJoin,
        )
    join = Qt.PenJoinStyle.RoundJoin if op.joint else Qt.PenJoinStyle.BevelJoin
    return QPen(color, op.width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap, join)


#: From this many points on, a polygon is filled through numpy (see :func:`_polygon`).
ARRAY_POINTS = 64
#: shiboken's pointer wrapper; its stub lacks the (address, size, writable) form used here.
_VOID_PTR: Any = shiboken6.VoidPtr


def _polygon(xy: Sequence[tuple[float, float]]) -> QPolygonF:
    """The points, shifted to pixel centres. A mask of thousands of points is copied into the
    QPolygonF's memory (two doubles per QPointF) at once: one QPointF per point in Python
    takes milliseconds at every frame of a drag."""
    if len(xy) < ARRAY_POINTS:
        return QPolygonF([QPointF(x + 0.5, y + 0.5) for x, y in xy])
    points = np.asarray(xy, dtype=np.float64).reshape(-1, 2) + 0.5
    poly = QPolygonF()
    poly.resize(len(points))
    memory = _VOID_PTR(poly.data(), points.nbytes, True)  # writable, of that size
    np.frombuffer(memory, np.float64).reshape(-1, 2)[:] = points
    return poly


def _op_path(op: Op) -> tuple[QPainterPath, bool]:
    """The op as a path and whether it is stroked (True) or filled (False). PIL boxes are
    inclusive of their last pixel and strokes grow inwards: both are mirrored here."""
    path = QPainterPath()
    if op.name in ("rectangle", "ellipse", "dot"):
        (x1, y1), (x2, y2) = op.xy
        inset = op.width / 2 if op.name != "dot" else 0.0
        rect = QRectF(x1 + inset, y1 + inset, x2 - x1 + 1 - 2 * inset, y2 - y1 + 1 - 2 * inset)
        if op.name == "rectangle":
            path.addRect(rect)
        else:
            path.addEllipse(rect)
        return path, op.name != "dot"
    poly = _polygon(op.xy)
    if op.name == "line":
        path.addPolygon(poly)
        return path, True
    path.addPolygon(poly)
    path.closeSubpath()
    return path, op.name == "outline"


#: A prompt as QPainter draws it: a path, and the pen that strokes it or the brush that fills it.
Drawing = tuple[QPainterPath, QPen | None, QBrush | None]


def paint_prompt(painter: QPainter, prompt: ov.Prompt, size: tuple[int, int]) -> None:
    """Draw ``prompt`` as vectors with the colour, alpha and pixel widths of ``overlays``."""
    paint_drawing(painter, prompt_drawing(prompt, size))


def paint_drawing(painter: QPainter, drawing: Drawing) -> None:
    path, pen, brush = drawing
    painter.setPen(pen if pen is not None else Qt.PenStyle.NoPen)
    painter.setBrush(brush if brush is not None else Qt.BrushStyle.NoBrush)
    painter.drawPath(path)


def prompt_drawing(prompt: ov.Prompt, size: tuple[int, int]) -> Drawing:
    """What :func:`paint_prompt` draws; made once per prompt by the preview (an outline of
    thousands of points takes milliseconds to turn into a path, and a move repaints it often)."""
    ops = compile_prompt(prompt, size)
    color = _color(prompt)
    if len(ops) == 1:
        path, stroked = _op_path(ops[0])
        if stroked:
            return path, _op_pen(ops[0], color), None
        return path, None, QBrush(color)
    # Several primitives paint one layer in the original: unite them so overlaps are not
    # blended twice.
    area = QPainterPath()
    area.setFillRule(Qt.FillRule.WindingFill)
    for op in ops:
        path, stroked = _op_path(op)
        if stroked:
            pen = _op_pen(op, color)
            stroker = QPainterPathStroker(pen)
            path = stroker.createStroke(path)
        area = area.united(path)
    return area, None, QBrush(color)


def prompt_rect(prompt: ov.Prompt, size: tuple[int, int]) -> QRectF:
    """The scene area a prompt can paint (its primitives' bounds with their margins)."""
    ops = compile_prompt(prompt, size)
    boxes = [op.bounds() for op in ops]
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[2] for b in boxes)
    y1 = max(b[3] for b in boxes)
    return QRectF(x0, y0, x1 - x0, y1 - y0)


class PreviewItem(QGraphicsItem):
    """The prompts being drawn or edited, until the exact composite replaces them."""

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[ov.Prompt] = []
        self.image_size: tuple[int, int] = (1, 1)
        self._drawings: list[Drawing] = []
        self._rect = QRectF()
        self.setZValue(Z_PREVIEW)

    @property
    def prompt(self) -> ov.Prompt | None:
        return self.prompts[0] if self.prompts else None

    def set_prompt(self, prompt: ov.Prompt | None, size: tuple[int, int]) -> None:
        self.set_prompts([] if prompt is None else [prompt], size)

    def set_prompts(self, prompts: Sequence[ov.Prompt], size: tuple[int, int]) -> None:
        prompts = list(prompts)
        if prompts == self.prompts and size == self.image_size:
            return
        self.prepareGeometryChange()
        self.prompts, self.image_size = prompts, size
        self._drawings = [prompt_drawing(p, size) for p in prompts]
        rect = QRectF()
        for prompt in prompts:
            rect = rect.united(prompt_rect(prompt, size))
        self._rect = rect

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for drawing in self._drawings:
            paint_drawing(painter, drawing)


class GuideItem(QGraphicsItem):
    """Vertices placed so far (polygons, triangles) and the segment to the pointer."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[float, float]] = []
        self.color = QColor(255, 0, 0)
        self.handle = 4.0
        self._rect = QRectF()
        self.setZValue(Z_GUIDE)

    def set_points(
        self, points: Sequence[tuple[float, float]], color: QColor, handle: float
    ) -> None:
        points = list(points)
        if points == self.points and color == self.color and handle == self.handle:
            return
        self.prepareGeometryChange()
        self.points, self.color, self.handle = points, color, handle
        if points:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            m = handle * 2
            self._rect = QRectF(
                min(xs) - m, min(ys) - m, max(xs) - min(xs) + 2 * m, max(ys) - min(ys) + 2 * m
            )
        else:
            self._rect = QRectF()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self.points:
            return
        pen = QPen(self.color, 0)  # cosmetic: one screen pixel at every zoom
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPolyline(QPolygonF([QPointF(x, y) for x, y in self.points]))
        painter.setBrush(QBrush(self.color))
        h = self.handle
        for x, y in self.points:
            painter.drawRect(QRectF(x - h / 2, y - h / 2, h, h))


def _box_rect(box: geo.Box, margin: float = 0.0) -> QRectF:
    x1, y1, x2, y2 = box
    return QRectF(x1 - margin, y1 - margin, x2 - x1 + 2 * margin, y2 - y1 + 2 * margin)


class SelectionItem(QGraphicsItem):
    """Dashed frames around the selected prompts; the current one's box handles (squares) and
    vertex handles (circles; on a dense outline only those near the pointer), the vertex that
    Delete would remove filled. Sizes are in screen pixels at every zoom (``handle`` is set
    from the zoom by the canvas)."""

    def __init__(self) -> None:
        super().__init__()
        self.prompt: ov.Prompt | None = None
        self.others: list[geo.Box] = []
        self.handle = 8.0
        self.vertex: tuple[float, float] | None = None
        self.hover: tuple[float, float] | None = None
        self.dots: list[tuple[float, float]] = []
        self._boxes: list[geo.Box] = []
        self._handles: list[tuple[str, tuple[float, float]]] = []
        self._rect = QRectF()
        self.setZValue(Z_SELECTION)

    def set_prompt(
        self,
        prompt: ov.Prompt | None,
        handle: float,
        others: Sequence[geo.Box] = (),
        vertex: tuple[float, float] | None = None,
    ) -> None:
        others = list(others)
        if (prompt, handle, others, vertex) == (self.prompt, self.handle, self.others, self.vertex):
            return
        self.prepareGeometryChange()
        self.prompt, self.handle, self.others, self.vertex = prompt, handle, others, vertex
        self.dots = self._dots()
        # Kept for the paints: the bounds of an outline of thousands of points cost milliseconds.
        box = vx.bounds(prompt) if prompt is not None else None
        self._boxes = [*others, *([box] if box is not None else [])]
        self._handles = geo.handles(prompt, box) if prompt is not None else []
        m = handle * 1.5
        rect = QRectF()
        for box in self._boxes:
            rect = rect.united(_box_rect(box, m))
        self._rect = rect

    def set_hover(self, pt: tuple[float, float] | None) -> None:
        """The pointer moved: a dense outline shows the handles near it."""
        self.hover = pt
        if self.prompt is None or vx.count(self.prompt) <= vx.DENSE_VERTICES:
            return
        dots = self._dots()
        if dots != self.dots:
            self.update(self._dots_rect(self.dots).united(self._dots_rect(dots)))
            self.dots = dots

    def _dots(self) -> list[tuple[float, float]]:
        if self.prompt is None or isinstance(self.prompt, ov.Triangle):
            return []  # a triangle's corners are its box handles already
        return vx.visible(self.prompt, self.hover, self.handle * 12, spacing=self.handle)

    def _dots_rect(self, dots: Sequence[tuple[float, float]]) -> QRectF:
        if not dots:
            return QRectF()
        xs, ys = [p[0] for p in dots], [p[1] for p in dots]
        return _box_rect((min(xs), min(ys), max(xs), max(ys)), self.handle)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        dark = QPen(QColor(0, 0, 0, 200), 0, Qt.PenStyle.SolidLine)
        light = QPen(QColor(255, 255, 255, 230), 0, Qt.PenStyle.DashLine)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for box in self._boxes:
            for pen in (dark, light):
                painter.setPen(pen)
                painter.drawRect(_box_rect(box))
        if self.prompt is None:
            return
        painter.setPen(dark)
        painter.setBrush(QBrush(QColor(255, 255, 255)))
        h = self.handle
        for _, (x, y) in self._handles:
            painter.drawRect(QRectF(x - h / 2, y - h / 2, h, h))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(QBrush(QColor(255, 255, 255, 230)))
        r = h * 0.5
        for x, y in self.dots:
            painter.drawEllipse(QPointF(x, y), r, r)
        if self.vertex is not None:
            painter.setBrush(QBrush(QColor(255, 170, 0)))
            painter.drawEllipse(QPointF(*self.vertex), h * 0.6, h * 0.6)


class BandItem(QGraphicsItem):
    """The rubber band of the select tool: a dashed rectangle, one screen pixel wide."""

    def __init__(self) -> None:
        super().__init__()
        self.box: geo.Box | None = None
        self.setZValue(Z_SELECTION)

    def set_box(self, box: geo.Box | None) -> None:
        if box != self.box:
            self.prepareGeometryChange()
            self.box = box

    def boundingRect(self) -> QRectF:
        return _box_rect(self.box, 1.0) if self.box is not None else QRectF()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self.box is None:
            return
        painter.setBrush(QBrush(QColor(80, 160, 255, 40)))
        painter.setPen(QPen(QColor(80, 160, 255), 0, Qt.PenStyle.DashLine))
        painter.drawRect(_box_rect(self.box))
