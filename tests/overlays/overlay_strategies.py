"""Hypothesis strategies for visual prompts, shared by the overlays tests.

Prompts are built through the public constructors; shapes the constructors reject as
degenerate are rejected here too (validation has its own tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st

import overlays as ov

TILE_EDGES = (0.0, 128.0, 256.0, 384.0)


def coord(low: float, high: float) -> st.SearchStrategy[float]:
    """A float in [low, high], often just next to a tile border or to 0."""
    near_edge = st.sampled_from(TILE_EDGES).flatmap(
        lambda e: st.floats(e - 2.0, e + 2.0, allow_nan=False, allow_infinity=False)
    )
    return st.one_of(
        st.floats(low, high, allow_nan=False, allow_infinity=False),
        near_edge,
        st.integers(int(low), int(high)).map(float),
    )


def point_in(size: tuple[int, int], margin: float = 0.2) -> st.SearchStrategy[ov.Pt]:
    w, h = size
    return st.tuples(coord(-margin * w, (1 + margin) * w), coord(-margin * h, (1 + margin) * h))


colors: st.SearchStrategy[str | tuple[int, int, int]] = st.one_of(
    st.sampled_from(list(ov.PALETTE)),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
)


def styles(max_width: float = 12.0) -> st.SearchStrategy[ov.Style]:
    return st.builds(
        ov.Style,
        color=colors,
        alpha=st.integers(1, 255),
        width=st.floats(0.05, max_width, allow_nan=False),
    )


def _build(cls: Callable[..., ov.Prompt], *args: Any, **kwargs: Any) -> ov.Prompt:
    try:
        return cls(*args, **kwargs)
    except ov.InvalidPrompt:
        reject()


@st.composite
def boxes(draw: st.DrawFn, size: tuple[int, int], margin: float = 0.2) -> ov.Box:
    (xa, ya), (xb, yb) = draw(point_in(size, margin)), draw(point_in(size, margin))
    if xa == xb or ya == yb:
        reject()
    return (min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))


@st.composite
def rings(draw: st.DrawFn, size: tuple[int, int], margin: float = 0.2) -> tuple[ov.Pt, ...]:
    """A simple polygon: star-shaped around a centre, vertices in angle order."""
    cx, cy = draw(point_in(size, margin))
    n = draw(st.integers(3, 8))
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi - 1e-3), min_size=n, max_size=n)))
    radius = max(2.0, max(size) / 2)
    radii = draw(st.lists(st.floats(1.0, radius), min_size=n, max_size=n))
    return tuple(
        (cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii, strict=True)
    )


@st.composite
def rectangles(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    return _build(ov.Rectangle, draw(boxes(size)), style=draw(styles()))


@st.composite
def ellipses(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    return _build(ov.Ellipse, draw(boxes(size)), style=draw(styles()))


@st.composite
def points(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    return _build(
        ov.Point,
        draw(point_in(size, 0.05)),
        radius=draw(st.floats(0.1, 30)),
        aspect=draw(st.floats(0.5, 2.0)),
        style=draw(styles()),
    )


@st.composite
def triangles(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    pts = (draw(point_in(size)), draw(point_in(size)), draw(point_in(size)))
    return _build(ov.Triangle, pts, style=draw(styles()))


@st.composite
def arrows(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    return _build(
        ov.Arrow,
        draw(point_in(size)),
        draw(point_in(size)),
        head=draw(st.none() | st.floats(0.5, max(size) / 2)),
        filled=draw(st.booleans()),
        bend=draw(st.none() | point_in(size)),
        style=draw(styles(6)),
    )


@st.composite
def scribbles(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    bezier = draw(st.booleans())
    n = 4 if bezier else draw(st.integers(2, 12))
    pts = tuple(draw(point_in(size)) for _ in range(n))
    return _build(ov.Scribble, pts, bezier=bezier, style=draw(styles()))


@st.composite
def masks(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    polys = draw(st.lists(rings(size), min_size=1, max_size=3))
    return _build(ov.Mask, tuple(polys), style=draw(styles()))


@st.composite
def contours(draw: st.DrawFn, size: tuple[int, int]) -> ov.Prompt:
    polys = draw(st.lists(rings(size), min_size=1, max_size=3))
    return _build(ov.Contour, tuple(polys), style=draw(styles(4)))


MAKERS: dict[str, Callable[[tuple[int, int]], st.SearchStrategy[ov.Prompt]]] = {
    "rectangle": rectangles,
    "ellipse": ellipses,
    "point": points,
    "triangle": triangles,
    "arrow": arrows,
    "scribble": scribbles,
    "mask": masks,
    "contour": contours,
}


def any_prompt(size: tuple[int, int]) -> st.SearchStrategy[ov.Prompt]:
    return st.one_of(*(make(size) for make in MAKERS.values()))


@st.composite
def regions(draw: st.DrawFn, size: tuple[int, int]) -> ov.Region:
    polys = draw(st.none() | st.lists(rings(size), min_size=1, max_size=2))
    try:
        return ov.Region(draw(boxes(size)), polygons=tuple(polys) if polys else None)
    except ov.InvalidPrompt:
        reject()


labels = st.none() | st.text(min_size=1, max_size=12).filter(lambda s: bool(s.strip()))
