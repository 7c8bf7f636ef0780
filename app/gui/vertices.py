"""Vertex editing of prompts: which points a prompt has, and moving, adding and deleting one.
Qt-free.

Masks and contours edit their polygon rings, triangles their three corners, free scribbles the
points of their stroke. A vertex is ``(ring, index)``. Every function returns a new prompt, or
None (or :class:`VertexLimit`) when the edit would make it invalid.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import shapely

import overlays as ov
from app.gui import geometry as geo

Pt = tuple[float, float]
Ring = tuple[Pt, ...]
Vertex = tuple[int, int]

#: Above this many vertices a selected prompt shows only the handles near the pointer.
DENSE_VERTICES = 400
#: At most this many handles near the pointer (the closest ones).
NEAR_HANDLES = 150
#: From this many points on, a moved ring is checked on arrays (see :func:`outline_moved`).
FAST_CHECK = 200


class VertexLimit(ValueError):
    """A vertex cannot be added or deleted: the prompt's kind fixes or bounds its count."""


def rings(prompt: ov.Prompt) -> tuple[Ring, ...]:
    """The editable point lists of ``prompt`` (empty for boxes, points and arrows)."""
    if isinstance(prompt, ov.Mask | ov.Contour):
        return prompt.polygons
    if isinstance(prompt, ov.Triangle):
        return (prompt.points,)
    if isinstance(prompt, ov.Scribble):
        return (prompt.points,)
    return ()


def closed(prompt: ov.Prompt) -> bool:
    """Whether the last point joins the first (an edge between them can take a vertex)."""
    return not isinstance(prompt, ov.Scribble)


def has_vertices(prompt: ov.Prompt) -> bool:
    return bool(rings(prompt))


def count(prompt: ov.Prompt) -> int:
    return sum(len(r) for r in rings(prompt))


def _with_rings(prompt: ov.Prompt, new: Sequence[Sequence[Pt]]) -> ov.Prompt:
    """``prompt`` with its rings replaced; raises ``overlays.InvalidPrompt`` if invalid."""
    if isinstance(prompt, ov.Mask | ov.Contour):
        polygons = tuple(tuple(r) for r in new)
        region = prompt.region
        # A region that is the outline itself (an imported segmentation) follows the edit.
        if region is not None and region.polygons == prompt.polygons:
            region = ov.Region.from_polygons(polygons)
        return replace(prompt, polygons=polygons, region=region)
    if isinstance(prompt, ov.Triangle):
        a, b, c = new[0]
        return replace(prompt, points=(a, b, c))
    if isinstance(prompt, ov.Scribble):
        return replace(prompt, points=tuple(new[0]))
    raise ov.InvalidPrompt(f"a {prompt.kind} has no vertices to edit")


_recent: list[tuple[ov.Prompt, np.ndarray, np.ndarray]] = []


def points_array(prompt: ov.Prompt) -> tuple[np.ndarray, np.ndarray]:
    """All vertices as an (N, 2) array and the (N, 2) array of their ``(ring, index)``.
    The last few prompts' arrays are kept: hovering asks for the same prompt at every move,
    a drag for the prompt as it started and as it is now."""
    for entry in _recent:
        if entry[0] is prompt:
            return entry[1], entry[2]
    rs = rings(prompt)
    if not rs:
        return np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int64)
    xy = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rs])
    ids = np.column_stack(
        (
            np.repeat(np.arange(len(rs)), [len(r) for r in rs]),
            np.concatenate([np.arange(len(r)) for r in rs]),
        )
    )
    _recent[:] = [(prompt, xy, ids), *_recent[:2]]
    return xy, ids


def vertex_at(prompt: ov.Prompt, pt: Pt, tolerance: float) -> Vertex | None:
    """The vertex nearest ``pt`` within ``tolerance`` pixels, if any."""
    xy, ids = points_array(prompt)
    if not len(xy):
        return None
    d = np.hypot(xy[:, 0] - pt[0], xy[:, 1] - pt[1])
    best = int(np.argmin(d))
    if d[best] > tolerance:
        return None
    return (int(ids[best, 0]), int(ids[best, 1]))


def visible(prompt: ov.Prompt, near: Pt | None, reach: float, spacing: float = 0.0) -> list[Pt]:
    """The vertices to draw handles for: all of them, or for a dense outline only the
    :data:`NEAR_HANDLES` closest to ``near`` within ``reach`` pixels (none without a pointer).
    Along the outline, one handle per ``spacing`` pixels: handles packed closer than their own
    size would read as a thick line (the pointer still grabs the nearest vertex)."""
    xy, _ = points_array(prompt)
    if len(xy) <= DENSE_VERTICES:
        chosen = np.arange(len(xy))
    elif near is None:
        return []
    else:
        d = np.hypot(xy[:, 0] - near[0], xy[:, 1] - near[1])
        chosen = np.flatnonzero(d <= reach)
    if spacing > 0 and len(chosen) > 1:
        steps = np.hypot(*np.diff(xy[chosen], axis=0).T)
        bucket = np.floor(np.concatenate(([0.0], np.cumsum(steps))) / spacing)
        chosen = chosen[np.concatenate(([True], bucket[1:] != bucket[:-1]))]
    if near is not None and len(xy) > DENSE_VERTICES and len(chosen) > NEAR_HANDLES:
        d = np.hypot(xy[chosen, 0] - near[0], xy[chosen, 1] - near[1])
        chosen = chosen[np.argsort(d)[:NEAR_HANDLES]]
    return [(float(x), float(y)) for x, y in xy[chosen]]


def bounds(prompt: ov.Prompt) -> geo.Box:
    """:func:`app.gui.geometry.bounds`, from the kept vertex array for an outline (a selection
    of thousands of points asks at every frame of a drag)."""
    if isinstance(prompt, ov.Mask | ov.Contour):
        xy, _ = points_array(prompt)
        (x1, y1), (x2, y2) = xy.min(axis=0), xy.max(axis=0)
        return (float(x1), float(y1), float(x2), float(y2))
    return geo.bounds(prompt)


def point_of(prompt: ov.Prompt, vertex: Vertex) -> Pt | None:
    """Where ``vertex`` is, or None if the prompt no longer has it (after an undo)."""
    k, i = vertex
    rs = rings(prompt)
    if 0 <= k < len(rs) and 0 <= i < len(rs[k]):
        return rs[k][i]
    return None


def move(prompt: ov.Prompt, vertex: Vertex, pt: Pt) -> ov.Prompt | None:
    """``prompt`` with ``vertex`` at ``pt``; None when that makes it invalid (crossing edges)."""
    if point_of(prompt, vertex) is None:
        return None
    k, i = vertex
    if isinstance(prompt, ov.Mask | ov.Contour) and len(prompt.polygons[k]) >= FAST_CHECK:
        return outline_moved(prompt, vertex, pt)
    new = [list(r) for r in rings(prompt)]
    new[k][i] = pt
    try:
        return _with_rings(prompt, new)
    except ov.InvalidPrompt:
        return None


def outline_moved(
    prompt: ov.Mask | ov.Contour, vertex: Vertex, pt: Pt
) -> ov.Mask | ov.Contour | None:
    """``prompt`` with ``vertex`` moved to ``pt``, or None when that makes it invalid.

    A drag sends a move per screen pixel; building a Mask checks every point in Python (30 ms
    at 4,000 points), which makes a dense outline stutter. The other points were checked when
    the prompt was made; the moved one and the ring are checked here as the constructor would
    (finite coordinates, a simple polygon of positive area, no explicit closing point).
    """
    k, i = vertex
    ring = list(prompt.polygons[k])
    ring[i] = pt = (float(pt[0]), float(pt[1]))
    if not all(math.isfinite(c) for c in pt) or ring[0] == ring[-1]:
        return None
    xy, _ = points_array(prompt)
    start = sum(len(r) for r in prompt.polygons[:k])
    moved_xy = xy[start : start + len(ring)].copy()
    moved_xy[i] = pt
    polygon = shapely.polygons(moved_xy)  # from the array: no per-point Python
    if not shapely.is_valid(polygon) or shapely.area(polygon) <= 0:
        return None
    polygons = (*prompt.polygons[:k], tuple(ring), *prompt.polygons[k + 1 :])
    moved = copy.copy(prompt)  # a frozen dataclass: copied, then its checked fields set
    object.__setattr__(moved, "polygons", polygons)
    if prompt.region is not None and prompt.region.polygons == prompt.polygons:
        region = copy.copy(prompt.region)
        object.__setattr__(region, "polygons", polygons)
        object.__setattr__(region, "box", geo.ring_bounds(polygons))
        object.__setattr__(moved, "region", region)
    return moved


def edge_at(prompt: ov.Prompt, pt: Pt, tolerance: float) -> tuple[Vertex, Pt] | None:
    """The edge nearest ``pt`` within ``tolerance``: ``((ring, insert_index), foot)`` where
    ``foot`` is the closest point on it (a new vertex goes there, before ``insert_index``)."""
    best: tuple[float, Vertex, Pt] | None = None
    for k, ring in enumerate(rings(prompt)):
        a = np.asarray(ring, dtype=np.float64)
        b = np.roll(a, -1, axis=0)
        if not closed(prompt):
            a, b = a[:-1], b[:-1]
        ab = b - a
        length2 = np.einsum("ij,ij->i", ab, ab)
        t = np.einsum("ij,ij->i", np.asarray(pt) - a, ab) / np.where(length2 > 0, length2, 1)
        t = np.clip(t, 0.0, 1.0)
        foot = a + ab * t[:, None]
        d = np.hypot(foot[:, 0] - pt[0], foot[:, 1] - pt[1])
        j = int(np.argmin(d))
        if d[j] <= tolerance and (best is None or d[j] < best[0]):
            best = (float(d[j]), (k, j + 1), (float(foot[j, 0]), float(foot[j, 1])))
    return (best[1], best[2]) if best else None


def insert(prompt: ov.Prompt, vertex: Vertex, pt: Pt) -> ov.Prompt:
    """``prompt`` with a new vertex at ``pt`` placed before ``vertex`` (ring, index)."""
    if isinstance(prompt, ov.Triangle):
        raise VertexLimit("a triangle has exactly 3 corners: drag one to reshape it")
    if isinstance(prompt, ov.Scribble) and prompt.bezier:
        raise VertexLimit("a Bézier scribble has exactly 4 control points: drag one instead")
    k, i = vertex
    new = [list(r) for r in rings(prompt)]
    new[k].insert(i, pt)
    if sum(len(r) for r in new) > ov.MAX_PROMPT_VERTICES:
        raise VertexLimit(f"a prompt may have at most {ov.MAX_PROMPT_VERTICES} points")
    try:
        return _with_rings(prompt, new)
    except ov.InvalidPrompt as exc:
        raise VertexLimit(f"cannot add a point there: {exc}") from None


def delete(prompt: ov.Prompt, vertex: Vertex) -> ov.Prompt:
    """``prompt`` without ``vertex``; :class:`VertexLimit` below the kind's minimum."""
    if isinstance(prompt, ov.Triangle):
        raise VertexLimit("a triangle has exactly 3 corners: delete the triangle instead")
    if isinstance(prompt, ov.Scribble) and prompt.bezier:
        raise VertexLimit("a Bézier scribble has exactly 4 control points")
    k, i = vertex
    new = [list(r) for r in rings(prompt)]
    minimum = 3 if closed(prompt) else 2
    if len(new[k]) <= minimum:
        what = "polygon" if closed(prompt) else "stroke"
        raise VertexLimit(
            f"a {prompt.kind} {what} needs at least {minimum} points: "
            f"delete the {prompt.kind} instead"
        )
    del new[k][i]
    try:
        return _with_rings(prompt, new)
    except ov.InvalidPrompt as exc:
        raise VertexLimit(f"cannot delete that point: {exc}") from None


def axis_lock(origin: Pt, pt: Pt) -> Pt:
    """``pt`` moved onto the horizontal or vertical line through ``origin`` (Shift)."""
    dx, dy = pt[0] - origin[0], pt[1] - origin[1]
    return (pt[0], origin[1]) if abs(dx) >= abs(dy) else (origin[0], pt[1])


def square_corner(anchor: Pt, pt: Pt, size: tuple[int, int]) -> Pt:
    """The corner opposite ``anchor`` of the largest square towards ``pt`` inside the image."""
    w, h = size
    sx = 1.0 if pt[0] >= anchor[0] else -1.0
    sy = 1.0 if pt[1] >= anchor[1] else -1.0
    room_x = w - anchor[0] if sx > 0 else anchor[0]
    room_y = h - anchor[1] if sy > 0 else anchor[1]
    side = min(max(abs(pt[0] - anchor[0]), abs(pt[1] - anchor[1])), room_x, room_y)
    return (anchor[0] + sx * side, anchor[1] + sy * side)


def snap_45(tail: Pt, pt: Pt, size: tuple[int, int]) -> Pt:
    """``pt`` turned about ``tail`` to the nearest multiple of 45°, kept inside the image."""
    dx, dy = pt[0] - tail[0], pt[1] - tail[1]
    length = math.hypot(dx, dy)
    angle = round(math.atan2(dy, dx) / (math.pi / 4)) * (math.pi / 4)
    ux, uy = round(math.cos(angle), 12), round(math.sin(angle), 12)
    w, h = size
    limits = [length]
    if ux > 0:
        limits.append((w - tail[0]) / ux)
    elif ux < 0:
        limits.append(tail[0] / -ux)
    if uy > 0:
        limits.append((h - tail[1]) / uy)
    elif uy < 0:
        limits.append(tail[1] / -uy)
    reach = max(min(limits), 0.0)
    return (tail[0] + ux * reach, tail[1] + uy * reach)
