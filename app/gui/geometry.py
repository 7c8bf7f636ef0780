"""Pure geometry of prompts for editing: hit-testing, handles, moving, resizing. Qt-free.

Coordinates are image pixels (the canvas scene is the image). Every function returns a new
prompt (prompts are frozen dataclasses) or None when the edit would make it degenerate.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry import Point as ShapelyPoint

import overlays as ov
from overlays.style import pixels

Pt = tuple[float, float]
Box = tuple[float, float, float, float]
Ring = tuple[Pt, ...]
PointMap = Callable[[Pt], Pt]

BOX_HANDLES: tuple[str, ...] = ("nw", "n", "ne", "e", "se", "s", "sw", "w")
#: A drag shorter than this (image pixels) is a click, not a shape.
MIN_DRAG = 2.0


def map_points(prompt: ov.Prompt, fn: PointMap) -> ov.Prompt:
    """``prompt`` with every coordinate (and its region's) passed through ``fn``.

    Raises ``overlays.InvalidPrompt`` when the result is degenerate.
    """
    changes: dict[str, Any] = {}
    if isinstance(prompt, ov.Rectangle | ov.Ellipse):
        changes["box"] = _map_box(prompt.box, fn)
    elif isinstance(prompt, ov.Point):
        changes["center"] = fn(prompt.center)
    elif isinstance(prompt, ov.Triangle | ov.Scribble):
        changes["points"] = tuple(fn(p) for p in prompt.points)
    elif isinstance(prompt, ov.Arrow):
        changes["tail"] = fn(prompt.tail)
        changes["tip"] = fn(prompt.tip)
        if prompt.bend is not None:
            changes["bend"] = fn(prompt.bend)
    elif isinstance(prompt, ov.Mask | ov.Contour):
        changes["polygons"] = tuple(tuple(fn(p) for p in ring) for ring in prompt.polygons)
    if prompt.region is not None:
        region = prompt.region
        polygons = (
            tuple(tuple(fn(p) for p in ring) for ring in region.polygons)
            if region.polygons
            else None
        )
        changes["region"] = ov.Region(box=_map_box(region.box, fn), polygons=polygons)
    return replace(prompt, **changes)


def _map_box(box: Box, fn: PointMap) -> Box:
    (ax, ay), (bx, by) = fn((box[0], box[1])), fn((box[2], box[3]))
    return (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))


def translate(prompt: ov.Prompt, dx: float, dy: float) -> ov.Prompt:
    if isinstance(prompt, ov.Mask | ov.Contour) and math.isfinite(dx) and math.isfinite(dy):
        return _translated_outline(prompt, dx, dy)
    return map_points(prompt, lambda p: (p[0] + dx, p[1] + dy))


def _translated_outline(prompt: ov.Mask | ov.Contour, dx: float, dy: float) -> ov.Prompt:
    """A moved outline is as valid as it was: its points are moved without the constructor's
    per-point checks (30 ms at 4,000 points, at every mouse move of a drag)."""

    def moved(rings: tuple[Ring, ...]) -> tuple[Ring, ...]:
        return tuple(tuple((x + dx, y + dy) for x, y in ring) for ring in rings)

    out = copy.copy(prompt)  # a frozen dataclass: copied, then its fields set
    object.__setattr__(out, "polygons", moved(prompt.polygons))
    if prompt.region is not None:
        region = copy.copy(prompt.region)
        x1, y1, x2, y2 = region.box
        object.__setattr__(region, "box", (x1 + dx, y1 + dy, x2 + dx, y2 + dy))
        if region.polygons:
            object.__setattr__(region, "polygons", moved(region.polygons))
        object.__setattr__(out, "region", region)
    return out


def bounds(prompt: ov.Prompt) -> Box:
    """The box that bbox handles act on (the drawn geometry's bounds)."""
    if isinstance(prompt, ov.Rectangle | ov.Ellipse):
        return prompt.box
    if isinstance(prompt, ov.Mask | ov.Contour):
        return ring_bounds(prompt.polygons)  # asked at every paint of a selection
    return prompt.bounds


def ring_bounds(polygons: Sequence[Ring]) -> Box:
    """The bounds of rings of points (``zip`` is C-fast, unlike a shapely union)."""
    boxes = []
    for ring in polygons:
        xs, ys = zip(*ring, strict=True)
        boxes.append((min(xs), min(ys), max(xs), max(ys)))
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def scale_to_box(prompt: ov.Prompt, old: Box, new: Box) -> ov.Prompt:
    """Map ``old`` onto ``new`` linearly (a resize by a bbox handle)."""
    ow, oh = old[2] - old[0], old[3] - old[1]
    nw, nh = new[2] - new[0], new[3] - new[1]
    sx = nw / ow if ow > 0 else 1.0
    sy = nh / oh if oh > 0 else 1.0

    def fn(p: Pt) -> Pt:
        return (new[0] + (p[0] - old[0]) * sx, new[1] + (p[1] - old[1]) * sy)

    return map_points(prompt, fn)


def handles(prompt: ov.Prompt, box: Box | None = None) -> list[tuple[str, Pt]]:
    """The named drag handles of a prompt: vertices for triangles and arrows, else bbox ones
    (on ``box`` when the caller has the prompt's bounds already)."""
    if isinstance(prompt, ov.Triangle):
        return [(f"v{i}", p) for i, p in enumerate(prompt.points)]
    if isinstance(prompt, ov.Arrow):
        return [("tail", prompt.tail), ("tip", prompt.tip)]
    if isinstance(prompt, ov.Point):
        return []
    x1, y1, x2, y2 = box if box is not None else bounds(prompt)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return []
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    spots = {
        "nw": (x1, y1),
        "n": (cx, y1),
        "ne": (x2, y1),
        "e": (x2, cy),
        "se": (x2, y2),
        "s": (cx, y2),
        "sw": (x1, y2),
        "w": (x1, cy),
    }
    return [(name, spots[name]) for name in BOX_HANDLES]


def handle_at(prompt: ov.Prompt, pt: Pt, tolerance: float) -> str | None:
    """The handle of ``prompt`` under ``pt`` (within ``tolerance`` pixels), if any."""
    best: tuple[float, str] | None = None
    for name, (hx, hy) in handles(prompt):
        d = math.hypot(pt[0] - hx, pt[1] - hy)
        if d <= tolerance and (best is None or d < best[0]):
            best = (d, name)
    return best[1] if best else None


def drag_handle(prompt: ov.Prompt, handle: str, pt: Pt) -> ov.Prompt | None:
    """``prompt`` with ``handle`` dragged to ``pt``; None when that would be degenerate."""
    try:
        if isinstance(prompt, ov.Triangle) and handle.startswith("v"):
            pts = list(prompt.points)
            pts[int(handle[1:])] = pt
            return replace(prompt, points=(pts[0], pts[1], pts[2]))
        if isinstance(prompt, ov.Arrow) and handle == "tail":
            return replace(prompt, tail=pt)
        if isinstance(prompt, ov.Arrow) and handle == "tip":
            return replace(prompt, tip=pt)
        old = bounds(prompt)
        x1, y1, x2, y2 = old
        if "w" in handle:
            x1 = pt[0]
        if "e" in handle:
            x2 = pt[0]
        if handle.startswith("n"):
            y1 = pt[1]
        if handle.startswith("s"):
            y2 = pt[1]
        new = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        if new[2] - new[0] < MIN_DRAG or new[3] - new[1] < MIN_DRAG:
            return None
        # Flip the shape when the handle crosses the opposite edge, as drawing tools do.
        if x2 < x1 or y2 < y1:
            fx, fy = x2 < x1, y2 < y1
            flipped = map_points(
                prompt,
                lambda p: (
                    old[0] + old[2] - p[0] if fx else p[0],
                    old[1] + old[3] - p[1] if fy else p[1],
                ),
            )
            return scale_to_box(flipped, old, new)
        return scale_to_box(prompt, old, new)
    except ov.InvalidPrompt:
        return None


def _shape(prompt: ov.Prompt) -> shapely.Geometry:
    if isinstance(prompt, ov.Triangle):
        return Polygon(prompt.points)
    return prompt.geometry()


def hit_test(
    prompts: Sequence[ov.Prompt], pt: Pt, tolerance: float, image_size: tuple[int, int]
) -> int | None:
    """The index of the topmost prompt under ``pt``: inside a closed shape, or within
    ``tolerance`` pixels (plus half its stroke) of a line or a point."""
    s = ov.scale_of(image_size)
    probe = ShapelyPoint(pt)
    for index in range(len(prompts) - 1, -1, -1):
        prompt = prompts[index]
        geom = _shape(prompt)
        if isinstance(prompt, ov.Point):
            reach = pixels(prompt.radius, s) * max(prompt.aspect, 1 / prompt.aspect) + tolerance
        else:
            reach = pixels(prompt.style.width, s) / 2 + tolerance
        if isinstance(geom, Polygon | MultiPolygon) and geom.covers(probe):
            return index
        if geom.distance(probe) <= reach:
            return index
    return None


def box_from_drag(a: Pt, b: Pt) -> Box | None:
    """The box spanned by a drag, or None for a click (smaller than :data:`MIN_DRAG`)."""
    box = (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
    if box[2] - box[0] < MIN_DRAG or box[3] - box[1] < MIN_DRAG:
        return None
    return box


def clamp(pt: Pt, image_size: tuple[int, int]) -> Pt:
    """``pt`` moved inside the image (drawing starts and ends on it)."""
    w, h = image_size
    return (min(max(pt[0], 0.0), float(w)), min(max(pt[1], 0.0), float(h)))


def brush_rings(stroke: Sequence[Pt], radius: float) -> list[Ring]:
    """The outline(s) of a round brush of ``radius`` pixels swept along ``stroke``."""
    area = (
        ShapelyPoint(stroke[0]).buffer(radius, quad_segs=8)
        if len(stroke) < 2 or all(p == stroke[0] for p in stroke)
        else LineString(stroke).buffer(radius, quad_segs=8)
    )
    return _rings_of(area.simplify(0.5))


def combine_rings(
    current: Sequence[Ring], stroke: Sequence[Ring], erase: bool = False
) -> list[Ring]:
    """Mask polygons with a brush stroke added (or erased). Holes are not kept: a mask is a
    set of outer outlines, as in ViP-LLaVA's COCO-style polygons."""
    a = shapely.union_all([Polygon(r) for r in current]) if current else Polygon()
    b = shapely.union_all([Polygon(r) for r in stroke]) if stroke else Polygon()
    result = a.difference(b) if erase else a.union(b)
    return _rings_of(result)


def rings_touch(a: Sequence[Ring], b: Sequence[Ring]) -> bool:
    """Whether two sets of polygons overlap or touch."""
    if not a or not b:
        return False
    return bool(
        shapely.union_all([Polygon(r) for r in a]).intersects(
            shapely.union_all([Polygon(r) for r in b])
        )
    )


def _rings_of(geom: shapely.Geometry) -> list[Ring]:
    parts = getattr(geom, "geoms", [geom])
    out: list[Ring] = []
    for part in parts:
        if isinstance(part, Polygon) and not part.is_empty and part.area >= 1.0:
            coords = part.exterior.coords[:-1]
            out.append(tuple((float(x), float(y)) for x, y in coords))
    return out


def describe(prompt: ov.Prompt) -> str:
    """A short label for lists: ``"rectangle · red"``, ``"arrow · (12,200,40)"``."""
    color = prompt.style.color_name or "rgb({},{},{})".format(*prompt.style.rgb)
    text = f"{prompt.kind} · {color}"
    return f"{text} · {prompt.label}" if prompt.label else text
