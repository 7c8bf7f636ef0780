"""Drawing and editing tools as small state machines over image coordinates. Qt-free.

The canvas feeds a tool press/move/release events in image pixels; the tool keeps what is in
progress (``preview``: a prompt to show as vectors, ``guide``: vertices placed so far) and
returns :class:`Edit` values when something is finished. The canvas turns edits into undo
commands; tools never touch the document. The base classes are in ``app.gui.toolbase``, the
select tool (selection, moves, vertex editing) in ``app.gui.select_tool``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import overlays as ov
from app.gui import geometry as geo
from app.gui import vertices as vx
from app.gui.select_tool import SelectTool
from app.gui.toolbase import Edit, Pt, Tool, ToolContext
from app.gui.toolbase import attempt as _try  # the tools' short name for it


@dataclass
class BoxTool(Tool):
    """Rectangle or ellipse: press a corner, drag, release at the opposite corner."""

    kind: Literal["rectangle", "ellipse"] = "rectangle"
    anchor: Pt | None = None

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        self.anchor = geo.clamp(pt, ctx.image_size)
        return []

    def _build(self, ctx: ToolContext, pt: Pt) -> ov.Prompt | None:
        if self.anchor is None:
            return None
        pt = geo.clamp(pt, ctx.image_size)
        if ctx.constrain:  # Shift: a square or a circle
            pt = vx.square_corner(self.anchor, pt, ctx.image_size)
        box = geo.box_from_drag(self.anchor, pt)
        if box is None:
            return None
        cls = ov.Rectangle if self.kind == "rectangle" else ov.Ellipse
        return cls(box=box, style=ctx.style)

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        if dragging and self.anchor is not None:
            self.preview = self._build(ctx, pt)
        return []

    def release(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        prompt = self._build(ctx, pt)
        self.anchor = None
        self.preview = None
        return [Edit("add", prompt)] if prompt else []

    def cancel(self) -> None:
        super().cancel()
        self.anchor = None


@dataclass
class AssistTool(BoxTool):
    """Box → mask: drag a box around an object; the box is handed on (``assist`` edit) and
    the mask found in it (``app.gui.assist``) arrives later, as one undoable edit."""

    def release(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        edits = super().release(ctx, pt)
        return [Edit("assist", e.prompt) for e in edits]


@dataclass
class PointTool(Tool):
    """A click places a point."""

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        center = geo.clamp(pt, ctx.image_size)
        return [Edit("add", ov.Point(center=center, radius=ctx.point_radius, style=ctx.style))]


@dataclass
class ArrowTool(Tool):
    """Press at the tail, drag, release at the tip."""

    tail: Pt | None = None

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        self.tail = geo.clamp(pt, ctx.image_size)
        return []

    def _build(self, ctx: ToolContext, pt: Pt) -> ov.Prompt | None:
        tail = self.tail
        if tail is None:
            return None
        tip = geo.clamp(pt, ctx.image_size)
        if ctx.constrain:  # Shift: multiples of 45°
            tip = vx.snap_45(tail, tip, ctx.image_size)
        if math.dist(tail, tip) < geo.MIN_DRAG:
            return None
        return _try(lambda: ov.Arrow(tail=tail, tip=tip, style=ctx.style))

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        if dragging:
            self.preview = self._build(ctx, pt)
        return []

    def release(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        prompt = self._build(ctx, pt)
        self.tail = None
        self.preview = None
        return [Edit("add", prompt)] if prompt else []

    def cancel(self) -> None:
        super().cancel()
        self.tail = None


@dataclass
class ScribbleTool(Tool):
    """Freehand: the stroke follows the pointer while the button is down."""

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        self.guide = [geo.clamp(pt, ctx.image_size)]
        return []

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        if not dragging or not self.guide:
            return []
        pt = geo.clamp(pt, ctx.image_size)
        # Thin the stroke to about one point per screen pixel of travel.
        if math.dist(pt, self.guide[-1]) >= ctx.tolerance / 4:
            self.guide.append(pt)
            points = tuple(self.guide)
            self.preview = _try(lambda: ov.Scribble(points=points, style=ctx.style))
        return []

    def release(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        if self.guide and geo.clamp(pt, ctx.image_size) != self.guide[-1]:
            self.guide.append(geo.clamp(pt, ctx.image_size))
        points = tuple(self.guide)
        prompt = _try(lambda: ov.Scribble(points=points, style=ctx.style))
        self.cancel()
        return [Edit("add", prompt)] if prompt else []


@dataclass
class PolygonTool(Tool):
    """Mask or mask contour: click the vertices; close on the first vertex, double-click or
    Enter."""

    kind: Literal["mask", "contour"] = "mask"
    hover: Pt | None = None

    def _build(self, ctx: ToolContext, points: Sequence[Pt]) -> ov.Prompt | None:
        if len(points) < 3:
            return None
        ring = tuple(points)
        if self.kind == "mask":
            return _try(lambda: ov.Mask(polygons=(ring,), style=ctx.style))
        return _try(lambda: ov.Contour(polygons=(ring,), style=ctx.style))

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        pt = geo.clamp(pt, ctx.image_size)
        if len(self.guide) >= 3 and math.dist(pt, self.guide[0]) <= ctx.tolerance * 2:
            return self.finish(ctx)
        if not self.guide or math.dist(pt, self.guide[-1]) > 0.5:
            self.guide.append(pt)
        return []

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        if self.guide:
            self.hover = geo.clamp(pt, ctx.image_size)
            self.preview = self._build(ctx, [*self.guide, self.hover])
        return []

    def double_click(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        return self.finish(ctx)

    def finish(self, ctx: ToolContext) -> list[Edit]:
        prompt = self._build(ctx, self.guide)
        self.cancel()
        return [Edit("add", prompt)] if prompt else []

    def cancel(self) -> None:
        super().cancel()
        self.hover = None


@dataclass
class TriangleTool(Tool):
    """Three clicks, one per corner."""

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        self.guide.append(geo.clamp(pt, ctx.image_size))
        if len(self.guide) < 3:
            return []
        a, b, c = self.guide
        prompt = _try(lambda: ov.Triangle(points=(a, b, c), style=ctx.style))
        if prompt is None:  # collinear: drop the last click and let the person retry
            self.guide.pop()
            return []
        self.cancel()
        return [Edit("add", prompt)]

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        if len(self.guide) == 2:
            a, b = self.guide
            c = geo.clamp(pt, ctx.image_size)
            self.preview = _try(lambda: ov.Triangle(points=(a, b, c), style=ctx.style))
        return []


@dataclass
class BrushTool(Tool):
    """Paint a mask with a round brush. A stroke that touches the selected mask adds to it (Alt
    erases from it); a stroke away from it makes a new mask, unless "add to mask" is on."""

    erase: bool = False

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        self.guide = [geo.clamp(pt, ctx.image_size)]
        self.erase = alt
        self._update(ctx)
        return []

    def _update(self, ctx: ToolContext) -> None:
        # Preview the swept brush as a thick round-capped line: the same area as its outline.
        s = ov.scale_of(ctx.image_size)
        style = replace(ctx.style, width=max(2 * ctx.brush_radius / s, 1e-3))
        if self.erase:
            style = replace(style, color=(128, 128, 128))
        first = self.guide[0]
        pts = self.guide if len(self.guide) > 1 else [first, (first[0] + 0.5, first[1])]
        self.preview = _try(lambda: ov.Scribble(points=tuple(pts), style=style))

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        if dragging and self.guide:
            pt = geo.clamp(pt, ctx.image_size)
            if math.dist(pt, self.guide[-1]) >= max(ctx.tolerance / 4, 0.5):
                self.guide.append(pt)
                self._update(ctx)
        return []

    def release(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        stroke = geo.brush_rings(self.guide, ctx.brush_radius) if self.guide else []
        erase = self.erase
        self.cancel()
        if not stroke:
            return []
        target = ctx.prompts[ctx.selected] if ctx.selected is not None else None
        # A mask just drawn stays selected: only touching it (or "add to mask") edits it.
        joins = isinstance(target, ov.Mask) and (
            erase or ctx.add_to_mask or geo.rings_touch(target.polygons, stroke)
        )
        if isinstance(target, ov.Mask) and ctx.selected is not None and joins:
            rings = geo.combine_rings(target.polygons, stroke, erase=erase)
            if not rings:
                return []
            updated = _try(lambda: replace(target, polygons=tuple(rings)))
            return [Edit("replace", updated, ctx.selected)] if updated else []
        if erase:
            return []
        prompt = _try(lambda: ov.Mask(polygons=tuple(stroke), style=ctx.style))
        return [Edit("add", prompt)] if prompt else []


def make_tool(name: str) -> Tool:
    """A fresh tool by id (the ids used by actions, settings and shortcuts)."""
    factories: dict[str, Tool] = {
        "select": SelectTool(name="select"),
        "rectangle": BoxTool(name="rectangle", kind="rectangle"),
        "ellipse": BoxTool(name="ellipse", kind="ellipse"),
        "point": PointTool(name="point"),
        "triangle": TriangleTool(name="triangle"),
        "arrow": ArrowTool(name="arrow"),
        "scribble": ScribbleTool(name="scribble"),
        "mask": PolygonTool(name="mask", kind="mask"),
        "brush": BrushTool(name="brush"),
        "contour": PolygonTool(name="contour", kind="contour"),
        "assist": AssistTool(name="assist"),
    }
    if name not in factories:
        raise ValueError(f"unknown tool {name!r}: use one of {', '.join(factories)}")
    return factories[name]


TOOL_NAMES: tuple[str, ...] = (
    "select",
    "rectangle",
    "ellipse",
    "point",
    "triangle",
    "arrow",
    "scribble",
    "mask",
    "brush",
    "contour",
    "assist",
)
