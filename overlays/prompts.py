"""Visual prompts as data: one frozen dataclass per ViP-LLaVA prompt kind.

Coordinates are absolute pixels of the original image (after EXIF orientation), ``x`` to the
right and ``y`` down, as floats. Construction validates the shape itself (finite, not
degenerate, at most :data:`MAX_PROMPT_VERTICES` points); :mod:`overlays.fitting` checks it
against an image and clips its region (the data), never the drawn shape.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import box as shapely_box
from shapely.validation import explain_validity

from overlays.errors import InvalidPrompt
from overlays.style import Style

Pt: TypeAlias = tuple[float, float]
Box: TypeAlias = tuple[float, float, float, float]
Ring: TypeAlias = tuple[Pt, ...]

Kind = Literal["rectangle", "ellipse", "point", "triangle", "arrow", "scribble", "mask", "contour"]
KINDS: tuple[str, ...] = (
    "rectangle",
    "ellipse",
    "point",
    "triangle",
    "arrow",
    "scribble",
    "mask",
    "contour",
)


#: Most points one prompt may have over all its polygons (mask, contour) or along its stroke
#: (scribble), and one region over its polygons. Validating and drawing cost grows with them;
#: a hand-drawn or COCO outline has a few hundred. Over it: :class:`InvalidPrompt`.
MAX_PROMPT_VERTICES = 10_000


def _check_vertex_count(count: int, what: str) -> None:
    if count > MAX_PROMPT_VERTICES:
        raise InvalidPrompt(
            f"{what} has {count} points, more than the {MAX_PROMPT_VERTICES} one prompt may have: "
            "simplify the outline (e.g. Douglas-Peucker with a 1-pixel tolerance) or split it"
        )


def _count_ring_points(value: Any) -> int:
    try:
        return sum(len(ring) for ring in value)
    except TypeError:
        return 0  # not a list of lists: the ring checks say what is wrong


def _num(value: Any, what: str) -> float:
    # numbers.Real also admits numpy scalars (np.int64, np.float32), common in callers' data.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidPrompt(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidPrompt(f"{what} is {value!r}: coordinates must be finite numbers")
    return number


def _pt(value: Any, what: str) -> Pt:
    try:
        x, y = value
    except (TypeError, ValueError):
        raise InvalidPrompt(f"{what} must be a pair x,y, got {value!r}") from None
    return (_num(x, f"{what} x"), _num(y, f"{what} y"))


def _box(value: Any, what: str = "box") -> Box:
    try:
        x1, y1, x2, y2 = value
    except (TypeError, ValueError):
        raise InvalidPrompt(f"{what} must be x1,y1,x2,y2, got {value!r}") from None
    b = (
        _num(x1, f"{what} x1"),
        _num(y1, f"{what} y1"),
        _num(x2, f"{what} x2"),
        _num(y2, f"{what} y2"),
    )
    if b[2] <= b[0] or b[3] <= b[1]:
        raise InvalidPrompt(
            f"{what} {_fmt(b)} is empty or reversed: give the top-left corner then the "
            "bottom-right one, with x1 < x2 and y1 < y2"
        )
    return b


def _ring(value: Any, what: str) -> Ring:
    try:
        points = tuple(_pt(p, f"{what} point {i}") for i, p in enumerate(value))
    except TypeError:
        raise InvalidPrompt(f"{what} must be a list of x,y points, got {value!r}") from None
    if len(points) >= 2 and points[0] == points[-1]:
        points = points[:-1]  # an explicitly closed ring is the same polygon
    if len(points) < 3:
        raise InvalidPrompt(f"{what} has {len(points)} distinct points: a polygon needs at least 3")
    poly = Polygon(points)
    if not poly.is_valid:
        raise InvalidPrompt(
            f"{what} is not a simple polygon ({explain_validity(poly)}): "
            "give the outline in order without crossing edges"
        )
    if poly.area <= 0:
        raise InvalidPrompt(f"{what} has zero area: its points are collinear")
    return points


def _fmt(values: Iterable[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


@dataclass(frozen=True)
class Region:
    """What a prompt marks: a box and optionally polygons (COCO-style segmentation)."""

    box: Box
    polygons: tuple[Ring, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _box(self.box, "region box"))
        if self.polygons is not None:
            _check_vertex_count(_count_ring_points(self.polygons), "region")
            try:
                rings = tuple(_ring(r, f"region polygon {i}") for i, r in enumerate(self.polygons))
            except TypeError:
                raise InvalidPrompt(
                    f"region polygons must be a list of polygons, got {self.polygons!r}"
                ) from None
            object.__setattr__(self, "polygons", rings or None)

    @classmethod
    def from_polygons(cls, polygons: Sequence[Sequence[Pt]]) -> Region:
        _check_vertex_count(_count_ring_points(polygons), "region")
        rings = tuple(_ring(r, f"polygon {i}") for i, r in enumerate(polygons))
        if not rings:
            raise InvalidPrompt("a region needs at least one polygon")
        return cls(box=_bounds_of_rings(rings), polygons=rings)

    def geometry(self) -> Polygon | MultiPolygon:
        """The region as a shapely geometry: the union of its polygons, or its box."""
        if self.polygons:
            return shapely.union_all([Polygon(r) for r in self.polygons])
        return shapely_box(*self.box)


def _bounds_of_rings(rings: Iterable[Ring]) -> Box:
    xs = [x for r in rings for x, _ in r]
    ys = [y for r in rings for _, y in r]
    return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True, kw_only=True)
class PromptBase:
    """Fields every prompt has: its style, an optional class name, an optional region."""

    kind: ClassVar[str]
    style: Style = field(default_factory=Style)
    label: str | None = None
    region: Region | None = None

    def _check_common(self) -> None:
        if not isinstance(self.style, Style):
            raise InvalidPrompt(f"style must be a Style, got {self.style!r}")
        if self.label is not None and (not isinstance(self.label, str) or not self.label.strip()):
            raise InvalidPrompt(f"label {self.label!r} must be a non-empty string or None")
        if self.region is not None and not isinstance(self.region, Region):
            raise InvalidPrompt(f"region must be a Region, got {self.region!r}")

    def geometry(self) -> shapely.Geometry:
        """The prompt's centre-line geometry (strokes as lines, fills as polygons)."""
        raise NotImplementedError

    @property
    def bounds(self) -> Box:
        """The bounding box of the drawn geometry (before stroke width)."""
        minx, miny, maxx, maxy = self.geometry().bounds
        return (minx, miny, maxx, maxy)

    def marked_region(self) -> Region:
        """The region this prompt refers to: the explicit one, else one derived from its shape."""
        if self.region is not None:
            return self.region
        return self._derived_region()

    def _derived_region(self) -> Region:
        return Region(box=_nonempty_box(self.bounds))


def _nonempty_box(b: Box) -> Box:
    x1, y1, x2, y2 = b
    # A vertical arrow or a horizontal scribble has a zero-width bounding box; widen it by one
    # pixel so that it is still a valid region box.
    if x2 <= x1:
        x2 = x1 + 1
    if y2 <= y1:
        y2 = y1 + 1
    return (x1, y1, x2, y2)


@dataclass(frozen=True)
class Rectangle(PromptBase):
    """The outline of a box: ``(x1, y1, x2, y2)``, top-left then bottom-right."""

    kind: ClassVar[str] = "rectangle"
    box: Box

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _box(self.box))
        self._check_common()

    def geometry(self) -> Polygon:
        return shapely_box(*self.box)

    def _derived_region(self) -> Region:
        return Region(box=self.box)


@dataclass(frozen=True)
class Ellipse(PromptBase):
    """The outline of the ellipse inscribed in ``box`` (as drawn; generation scales it)."""

    kind: ClassVar[str] = "ellipse"
    box: Box

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _box(self.box))
        self._check_common()

    def geometry(self) -> Polygon:
        x1, y1, x2, y2 = self.box
        circle = ShapelyPoint((x1 + x2) / 2, (y1 + y2) / 2).buffer(1.0, quad_segs=16)
        return affinity.scale(circle, (x2 - x1) / 2, (y2 - y1) / 2)

    def _derived_region(self) -> Region:
        return Region(box=self.box)


@dataclass(frozen=True)
class Point(PromptBase):
    """A filled dot. ``radius`` is in model units (8 in the CLI style); ``aspect`` stretches x."""

    kind: ClassVar[str] = "point"
    center: Pt
    radius: float = 8.0
    aspect: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _pt(self.center, "point"))
        radius = _num(self.radius, "point radius")
        aspect = _num(self.aspect, "point aspect")
        if radius <= 0:
            raise InvalidPrompt(f"point radius {radius:g} must be positive (default 8)")
        if aspect <= 0:
            raise InvalidPrompt(f"point aspect {aspect:g} must be positive (1 = a circle)")
        object.__setattr__(self, "radius", radius)
        object.__setattr__(self, "aspect", aspect)
        self._check_common()

    def geometry(self) -> ShapelyPoint:
        return ShapelyPoint(self.center)


@dataclass(frozen=True)
class Triangle(PromptBase):
    """The closed outline through three points (rounded joints)."""

    kind: ClassVar[str] = "triangle"
    points: tuple[Pt, Pt, Pt]

    def __post_init__(self) -> None:
        try:
            raw = list(self.points)
        except TypeError:
            raise InvalidPrompt(f"triangle needs three points, got {self.points!r}") from None
        if len(raw) != 3:
            raise InvalidPrompt(f"triangle needs exactly three points, got {len(raw)}")
        pts = tuple(_pt(p, f"triangle point {i}") for i, p in enumerate(raw))
        if Polygon(pts).area <= 0:
            raise InvalidPrompt(
                "triangle points are collinear: click three corners that enclose an area"
            )
        object.__setattr__(self, "points", pts)
        self._check_common()

    def geometry(self) -> LineString:
        return LineString([*self.points, self.points[0]])


@dataclass(frozen=True)
class Arrow(PromptBase):
    """An arrow from ``tail`` to ``tip``; the tip points at the region.

    ``head`` is the barb length in pixels (None: the training default, see `render`);
    ``filled`` draws a solid head, else an open V; ``bend`` is an optional mid-point that makes
    the shaft a two-segment wobbly line, as half of the training arrows were.
    """

    kind: ClassVar[str] = "arrow"
    tail: Pt
    tip: Pt
    head: float | None = None
    filled: bool = True
    bend: Pt | None = None

    def __post_init__(self) -> None:
        tail = _pt(self.tail, "arrow tail")
        tip = _pt(self.tip, "arrow tip")
        if tail == tip:
            raise InvalidPrompt(
                "arrow has zero length: drag from the tail to a different tip point"
            )
        object.__setattr__(self, "tail", tail)
        object.__setattr__(self, "tip", tip)
        if self.head is not None:
            head = _num(self.head, "arrow head")
            if head <= 0:
                raise InvalidPrompt(f"arrow head length {head:g} must be positive")
            object.__setattr__(self, "head", head)
        if not isinstance(self.filled, bool):
            raise InvalidPrompt(f"arrow 'filled' must be true or false, got {self.filled!r}")
        if self.bend is not None:
            object.__setattr__(self, "bend", _pt(self.bend, "arrow bend"))
        self._check_common()

    @property
    def length(self) -> float:
        return math.dist(self.tail, self.tip)

    def geometry(self) -> LineString:
        pts = [self.tip, self.bend, self.tail] if self.bend else [self.tip, self.tail]
        return LineString(pts)

    def _derived_region(self) -> Region:
        # The arrow refers to what its tip touches: a small box around the tip.
        x, y = self.tip
        r = max(1.0, 0.1 * self.length)
        return Region(box=(x - r, y - r, x + r, y + r))


@dataclass(frozen=True)
class Scribble(PromptBase):
    """A freehand stroke through ``points``; with ``bezier`` the 4 points are cubic controls."""

    kind: ClassVar[str] = "scribble"
    points: tuple[Pt, ...]
    bezier: bool = False

    def __post_init__(self) -> None:
        with contextlib.suppress(TypeError):  # not a list: said below
            _check_vertex_count(len(self.points), "scribble")
        try:
            pts = tuple(_pt(p, f"scribble point {i}") for i, p in enumerate(self.points))
        except TypeError:
            raise InvalidPrompt(f"scribble needs a list of points, got {self.points!r}") from None
        if not isinstance(self.bezier, bool):
            raise InvalidPrompt(f"scribble 'bezier' must be true or false, got {self.bezier!r}")
        if self.bezier and len(pts) != 4:
            raise InvalidPrompt(f"a Bézier scribble needs exactly 4 control points, got {len(pts)}")
        if len(pts) < 2 or all(p == pts[0] for p in pts):
            raise InvalidPrompt("scribble has zero length: draw a stroke of at least two points")
        object.__setattr__(self, "points", pts)
        self._check_common()

    def geometry(self) -> LineString:
        return LineString(self.points)


@dataclass(frozen=True)
class Mask(PromptBase):
    """One or more filled polygons."""

    kind: ClassVar[str] = "mask"
    polygons: tuple[Ring, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "polygons", _polygons(self.polygons, self.kind))
        self._check_common()

    def geometry(self) -> Polygon | MultiPolygon:
        return shapely.union_all([Polygon(r) for r in self.polygons])

    def _derived_region(self) -> Region:
        return Region(box=_bounds_of_rings(self.polygons), polygons=self.polygons)


@dataclass(frozen=True)
class Contour(PromptBase):
    """The outline of one or more polygons (ViP-LLaVA's "mask contour")."""

    kind: ClassVar[str] = "contour"
    polygons: tuple[Ring, ...]
    # The CLI/eval contour is 1 unit wide, not 3 (docs/VIP_FACTS.md §1).
    style: Style = field(default_factory=lambda: Style(width=1.0), kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "polygons", _polygons(self.polygons, self.kind))
        self._check_common()

    def geometry(self) -> Polygon | MultiPolygon:
        return shapely.union_all([Polygon(r) for r in self.polygons])

    def _derived_region(self) -> Region:
        return Region(box=_bounds_of_rings(self.polygons), polygons=self.polygons)


def _polygons(value: Any, kind: str) -> tuple[Ring, ...]:
    _check_vertex_count(_count_ring_points(value), kind)
    try:
        rings = tuple(_ring(r, f"{kind} polygon {i}") for i, r in enumerate(value))
    except TypeError:
        raise InvalidPrompt(f"{kind} needs a list of polygons, got {value!r}") from None
    if not rings:
        raise InvalidPrompt(f"{kind} needs at least one polygon of 3 or more points")
    return rings


Prompt: TypeAlias = Rectangle | Ellipse | Point | Triangle | Arrow | Scribble | Mask | Contour
PROMPT_TYPES: dict[str, type[Prompt]] = {
    t.kind: t for t in (Rectangle, Ellipse, Point, Triangle, Arrow, Scribble, Mask, Contour)
}


# --------------------------------------------------------------------------- conversions


def box_from_xywh(x: float, y: float, w: float, h: float) -> Box:
    """COCO ``[x, y, width, height]`` to ``(x1, y1, x2, y2)``."""
    return _box((x, y, x + w, y + h))


def box_from_normalized(box: Sequence[float], image_size: tuple[int, int]) -> Box:
    """A box with coordinates in 0..1 to absolute pixels of an image of ``image_size``."""
    w, h = image_size
    x1, y1, x2, y2 = _box(box)
    if min(x1, y1) < 0 or max(x2, y2) > 1:
        raise InvalidPrompt(f"normalised box {_fmt((x1, y1, x2, y2))} must lie within 0..1")
    return (x1 * w, y1 * h, x2 * w, y2 * h)


def points_from_flat(flat: Sequence[float]) -> Ring:
    """A flat ``[x0, y0, x1, y1, ...]`` list (COCO segmentation) to points."""
    if len(flat) % 2:
        raise InvalidPrompt(f"a flat polygon needs an even number of values, got {len(flat)}")
    return tuple(_pt((flat[i], flat[i + 1]), f"point {i // 2}") for i in range(0, len(flat), 2))


def flat_from_points(points: Iterable[Pt]) -> list[float]:
    """Points to a flat ``[x0, y0, x1, y1, ...]`` list."""
    return [c for p in points for c in p]


def region_mask(region: Region, image_size: tuple[int, int]) -> Any:
    """The region as a boolean numpy array of shape (H, W)."""
    import numpy as np
    from PIL import Image, ImageDraw

    mask = Image.new("1", image_size, 0)
    draw = ImageDraw.Draw(mask)
    if region.polygons:
        for ring in region.polygons:
            draw.polygon(list(ring), fill=1)
    else:
        draw.rectangle(region.box, fill=1)
    return np.array(mask, dtype=bool)
