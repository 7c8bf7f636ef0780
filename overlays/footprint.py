"""Which 128-pixel tiles a prompt's PIL primitives can touch, in time linear in its vertices.

The renderer composites only these tiles, so the footprint must be a superset of every pixel the
primitives paint. Each primitive becomes straight segments widened by a margin: round for PIL's
wide lines and joints, square for a mask contour's (2w+1)² dilation. Filled shapes add the tiles
whose centre lies inside. A tile is marked when its distance to a segment is within the margin
(square: when the segment meets the tile grown by it, a separating-axis test), tested for the
tiles of each segment's bounding box only. Nothing is quadratic in the
vertex count (the earlier shapely buffer of a spiky 20k-point contour needed 23 GB).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from overlays.render import Op

TILE = 128
#: Tile tests done at once; bounds the footprint's working memory (a few tens of MB).
_CHUNK = 1 << 16
#: Sides of the 64-gon standing in for an ellipse (its vertices lie on the ellipse).
_ELLIPSE_SIDES = 64


class Grid:
    """The tiles of ``[x0, x1) × [y0, y1)`` (``x0``, ``y0`` multiples of :data:`TILE`)."""

    def __init__(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.nx = -(-(x1 - x0) // TILE)
        self.ny = -(-(y1 - y0) // TILE)
        self.hit = np.zeros((self.ny, self.nx), dtype=bool)

    def runs(self) -> list[tuple[int, int, int, int]]:
        """Pixel boxes of the touched tiles, horizontal runs merged: fewer, larger PIL calls."""
        out: list[tuple[int, int, int, int]] = []
        for row in range(self.ny):
            cols = np.flatnonzero(self.hit[row])
            if not len(cols):
                continue
            breaks = np.flatnonzero(np.diff(cols) > 1)
            starts = np.r_[cols[0], cols[breaks + 1]]
            ends = np.r_[cols[breaks], cols[-1]]
            y = self.y0 + row * TILE
            for a, b in zip(starts, ends, strict=True):
                box = (self.x0 + int(a) * TILE, y, self.x0 + (int(b) + 1) * TILE, y + TILE)
                out.append((box[0], box[1], min(box[2], self.x1), min(box[3], self.y1)))
        return out


def mark_ops(grid: Grid, ops: Sequence[Op]) -> None:
    """Mark on ``grid`` every tile the primitives ``ops`` can paint."""
    for op in ops:
        margin = op.width + op.dilate + 2.0
        xy = np.asarray(op.xy, dtype=float).reshape(-1, 2)
        if op.name == "rectangle":
            (x1, y1), (x2, y2) = xy
            mark_segments(grid, _closed(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])), margin)
        elif op.name == "ellipse":
            ring, sag = _ellipse_ring(xy)
            mark_segments(grid, _closed(ring), margin + sag)
        elif op.name == "dot":
            (x1, y1), (x2, y2) = xy
            mark_box(grid, x1 - 2, y1 - 2, x2 + 2, y2 + 2)
        elif op.name == "fill":
            mark_segments(grid, _closed(xy), margin)
            mark_inside(grid, xy)
        elif op.name == "outline":
            mark_segments(grid, _closed(xy), margin, square=True)
        elif op.name == "line":
            # Round joints are discs of the line's width around each vertex.
            pts, slack = _thinned(xy)
            mark_segments(grid, _open(pts), margin + slack + (op.width if op.joint else 0))


def _thinned(xy: np.ndarray, keep: int = 256) -> tuple[np.ndarray, float]:
    """About ``keep`` of the points of a long polyline (a Bézier scribble has ~1000·s), and how
    far the dropped ones may lie from the kept chords: the longest stretch of path skipped."""
    step = len(xy) // keep
    if step <= 1:
        return xy, 0.0
    idx = np.unique(np.r_[np.arange(0, len(xy), step), len(xy) - 1])
    lengths = np.hypot(*np.diff(xy, axis=0).T)
    return xy[idx], float(np.add.reduceat(lengths, idx[:-1]).max())


def _open(xy: np.ndarray) -> np.ndarray:
    """Consecutive segments of a polyline as an (n, 4) array; one point is a zero segment."""
    if len(xy) == 1:
        return np.hstack([xy, xy])
    return np.hstack([xy[:-1], xy[1:]])


def _closed(xy: np.ndarray) -> np.ndarray:
    return np.hstack([xy, np.roll(xy, -1, axis=0)])


def _ellipse_ring(xy: np.ndarray) -> tuple[np.ndarray, float]:
    (x1, y1), (x2, y2) = xy
    rx, ry = max((x2 - x1) / 2, 0.5), max((y2 - y1) / 2, 0.5)
    t = np.linspace(0, 2 * np.pi, _ELLIPSE_SIDES, endpoint=False)
    ring = np.column_stack([(x1 + x2) / 2 + rx * np.cos(t), (y1 + y2) / 2 + ry * np.sin(t)])
    # The chords of a 64-gon sit inside the ellipse by at most r·(1 − cos(π/64)) ≈ 0.0012·r.
    return ring, 0.0013 * max(x2 - x1, y2 - y1) / 2


def mark_box(grid: Grid, x1: float, y1: float, x2: float, y2: float) -> None:
    """Mark every tile meeting the box."""
    ix0, ix1 = _span(x1, x2, grid.x0, grid.nx)
    iy0, iy1 = _span(y1, y2, grid.y0, grid.ny)
    if ix0 <= ix1 and iy0 <= iy1:
        grid.hit[iy0 : iy1 + 1, ix0 : ix1 + 1] = True


def _span(lo: float, hi: float, origin: int, n: int) -> tuple[int, int]:
    first, last = math.floor((lo - origin) / TILE), math.floor((hi - origin) / TILE)
    return max(0, first), min(n - 1, last)


def mark_segments(grid: Grid, seg: np.ndarray, margin: float, *, square: bool = False) -> None:
    """Mark every tile within ``margin`` of a segment of ``seg`` (rows x1, y1, x2, y2): within
    that Euclidean distance, or with ``square`` within a square of half-side ``margin`` (a mask
    contour's dilation). Work is proportional to the tiles of each segment's box."""
    if not len(seg):
        return
    ax, ay, bx, by = seg.T
    lo_x, hi_x = np.minimum(ax, bx) - margin, np.maximum(ax, bx) + margin
    lo_y, hi_y = np.minimum(ay, by) - margin, np.maximum(ay, by) + margin
    ix0 = np.clip(np.floor((lo_x - grid.x0) / TILE), 0, grid.nx).astype(np.int64)
    ix1 = np.clip(np.floor((hi_x - grid.x0) / TILE), -1, grid.nx - 1).astype(np.int64)
    iy0 = np.clip(np.floor((lo_y - grid.y0) / TILE), 0, grid.ny).astype(np.int64)
    iy1 = np.clip(np.floor((hi_y - grid.y0) / TILE), -1, grid.ny - 1).astype(np.int64)
    wide = np.maximum(ix1 - ix0 + 1, 0)
    counts = wide * np.maximum(iy1 - iy0 + 1, 0)
    for rows in _chunks(counts):
        n = counts[rows]
        if not n.sum():
            continue
        idx = np.repeat(rows, n)
        # The k-th candidate tile of segment i, row by row through its tile box.
        k = np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n)
        tx = ix0[idx] + k % wide[idx]
        ty = iy0[idx] + k // wide[idx]
        left, top = grid.x0 + tx * TILE, grid.y0 + ty * TILE
        a = (ax[idx], ay[idx])
        b = (bx[idx], by[idx])
        if square:
            meets = _segment_meets_box(a, b, left, top, margin)
        else:
            meets = _segment_meets_box(a, b, left, top, 0.0) | (
                _segment_box_distance(a, b, left, top) <= margin
            )
        grid.hit[ty[meets], tx[meets]] = True


Points = tuple[np.ndarray, np.ndarray]


def _segment_meets_box(
    a: Points, b: Points, left: np.ndarray, top: np.ndarray, grow: float
) -> np.ndarray:
    """Separating axes of segments a–b and tiles grown by ``grow``: x, y, the segment's normal."""
    (ax, ay), (bx, by) = a, b
    lo, hi = -grow, TILE + grow
    overlap_x = (np.maximum(ax, bx) >= left + lo) & (np.minimum(ax, bx) <= left + hi)
    overlap_y = (np.maximum(ay, by) >= top + lo) & (np.minimum(ay, by) <= top + hi)
    half = TILE / 2 + grow
    nx, ny = ay - by, bx - ax
    offset = nx * (left + TILE / 2 - ax) + ny * (top + TILE / 2 - ay)
    return overlap_x & overlap_y & (np.abs(offset) <= (np.abs(nx) + np.abs(ny)) * half)


def _segment_box_distance(a: Points, b: Points, left: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Distance between segments a–b and tiles that they do not meet: reached at an end of the
    segment or at a corner of the tile (both are convex)."""
    (ax, ay), (bx, by) = a, b
    right, bottom = left + TILE, top + TILE

    def point_to_box(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        dx = np.maximum(np.maximum(left - px, px - right), 0)
        dy = np.maximum(np.maximum(top - py, py - bottom), 0)
        return np.hypot(dx, dy)

    best = np.minimum(point_to_box(ax, ay), point_to_box(bx, by))
    ux, uy = bx - ax, by - ay
    length2 = np.maximum(ux * ux + uy * uy, 1e-300)
    for cx in (left, right):
        for cy in (top, bottom):
            t = np.clip(((cx - ax) * ux + (cy - ay) * uy) / length2, 0, 1)
            best = np.minimum(best, np.hypot(ax + t * ux - cx, ay + t * uy - cy))
    return best


def _chunks(counts: np.ndarray) -> Iterator[np.ndarray]:
    """Runs of segment indices whose candidate tiles add up to about :data:`_CHUNK`."""
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + _CHUNK, side="right")), start + 1)
        yield np.arange(start, stop)
        start = stop


def mark_inside(grid: Grid, ring: np.ndarray) -> None:
    """Mark the tiles whose centre lies inside the polygon ``ring`` (even-odd rule).

    A tile the outline does not cross is wholly inside or outside, so its centre decides; tiles
    the outline crosses are marked by the outline's segments. One scan line per tile row.
    """
    if len(ring) < 3:
        return
    ax, ay = ring[:, 0], ring[:, 1]
    bx, by = np.roll(ax, -1), np.roll(ay, -1)
    lo, hi = np.minimum(ay, by), np.maximum(ay, by)
    first = np.clip(np.ceil((lo - grid.y0) / TILE - 0.5), 0, grid.ny).astype(np.int64)
    last = np.clip(np.ceil((hi - grid.y0) / TILE - 0.5) - 1, -1, grid.ny - 1).astype(np.int64)
    counts = np.maximum(last - first + 1, 0)  # rows whose centre y is in [lo, hi)
    if not counts.sum():
        return
    edge = np.repeat(np.arange(len(ring)), counts)
    row = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
    yc = grid.y0 + row * TILE + TILE / 2
    t = (yc - ay[edge]) / (by[edge] - ay[edge])
    xc = ax[edge] + t * (bx[edge] - ax[edge])
    order = np.lexsort((xc, row))
    row, xc = row[order], xc[order]
    centres = grid.x0 + np.arange(grid.nx) * TILE + TILE / 2
    bounds = np.searchsorted(row, np.arange(grid.ny + 1))
    for r in range(grid.ny):
        crossings = xc[bounds[r] : bounds[r + 1]]
        if len(crossings):
            grid.hit[r] |= np.searchsorted(crossings, centres) % 2 == 1
