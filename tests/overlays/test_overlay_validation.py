"""Validation: degenerate or malformed prompts raise `InvalidPrompt` with a helpful message;
`fit_to_image` refuses prompts entirely outside the image (or far beyond it) and clips their
regions, never the drawn shape; the stored region `fit_region(marked_region())` is clipped."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from overlay_strategies import MAKERS, boxes, rings
from shapely.geometry import Polygon
from shapely.geometry import box as shapely_box

import overlays as ov

FAST = settings(max_examples=60, deadline=None)
NAN, INF = math.nan, math.inf


# --------------------------------------------------------------------------- degenerate shapes


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ov.Rectangle((10, 10, 10, 20)), ["empty or reversed", "x1 < x2"]),
        (lambda: ov.Rectangle((10, 20, 30, 20)), ["empty or reversed", "y1 < y2"]),
        (lambda: ov.Rectangle((50, 10, 20, 40)), ["reversed", "top-left", "bottom-right"]),
        (lambda: ov.Ellipse((5, 5, 5, 5)), ["empty or reversed"]),
        (lambda: ov.Mask((((0, 0), (10, 10)),)), ["2 distinct points", "at least 3"]),
        (lambda: ov.Contour((((0, 0), (10, 10), (0, 0)),)), ["at least 3"]),
        (lambda: ov.Mask(()), ["at least one polygon"]),
        (
            lambda: ov.Mask((((0, 0), (10, 10), (10, 0), (0, 10)),)),  # a bow-tie
            ["not a simple polygon", "crossing"],
        ),
        (
            lambda: ov.Contour((((0, 0), (10, 10), (10, 0), (0, 10)),)),
            ["not a simple polygon", "crossing"],
        ),
        (lambda: ov.Mask((((0, 0), (5, 0), (10, 0)),)), ["polygon 0"]),  # collinear ring
        (lambda: ov.Arrow((3, 4), (3, 4)), ["zero length", "tail", "tip"]),
        (lambda: ov.Arrow((3, 4), (9, 4), head=0), ["head", "positive"]),
        (lambda: ov.Triangle(((0, 0), (5, 5), (10, 10))), ["collinear"]),
        (lambda: ov.Triangle(((0, 0), (5, 5))), ["three points", "2"]),  # type: ignore[arg-type]
        (lambda: ov.Triangle(((0, 0), (0, 0), (1, 5))), ["collinear"]),
        (lambda: ov.Scribble(((1, 1),)), ["zero length"]),
        (lambda: ov.Scribble(((1, 1), (1, 1), (1, 1))), ["zero length"]),
        (lambda: ov.Scribble(((0, 0), (1, 1), (2, 0)), bezier=True), ["4 control points"]),
        (lambda: ov.Point((1, 2), radius=0), ["radius", "positive"]),
        (lambda: ov.Point((1, 2), aspect=-1), ["aspect", "positive"]),
        (lambda: ov.Region((0, 0, 0, 5)), ["region box", "empty or reversed"]),
        (lambda: ov.Region.from_polygons([]), ["at least one polygon"]),
        (lambda: ov.Rectangle((0, 0, 1, 1), label="  "), ["label"]),
        (lambda: ov.Rectangle("abcd"), ["must be a number"]),  # type: ignore[arg-type]
        (lambda: ov.Rectangle((0, 0, 1)), ["x1,y1,x2,y2"]),  # type: ignore[arg-type]
        (lambda: ov.Point((1, 2, 3)), ["pair x,y"]),  # type: ignore[arg-type]
        (lambda: ov.Rectangle((True, 0, 1, 1)), ["must be a number", "True"]),
    ],
)
def test_degenerate_prompts_raise_with_a_helpful_message(
    make: Callable[[], Any], words: list[str]
) -> None:
    with pytest.raises(ov.InvalidPrompt) as info:
        make()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


NON_FINITE = [NAN, INF, -INF]


@pytest.mark.parametrize("bad", NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "make",
    [
        lambda v: ov.Rectangle((v, 0, 10, 10)),
        lambda v: ov.Rectangle((0, 0, 10, v)),
        lambda v: ov.Ellipse((0, v, 10, 10)),
        lambda v: ov.Point((5, v)),
        lambda v: ov.Point((5, 5), radius=v),
        lambda v: ov.Point((5, 5), aspect=v),
        lambda v: ov.Triangle(((0, 0), (v, 5), (10, 0))),
        lambda v: ov.Arrow((v, 0), (10, 10)),
        lambda v: ov.Arrow((0, 0), (10, 10), head=v),
        lambda v: ov.Arrow((0, 0), (10, 10), bend=(5, v)),
        lambda v: ov.Scribble(((0, 0), (v, 10))),
        lambda v: ov.Mask((((0, 0), (10, 0), (v, 10)),)),
        lambda v: ov.Contour((((0, 0), (10, 0), (5, v)),)),
        lambda v: ov.Region((0, 0, 10, 10), polygons=(((0, 0), (v, 0), (5, 5)),)),
        lambda v: ov.Style(width=v),
    ],
)
def test_non_finite_numbers_are_refused(make: Callable[[float], Any], bad: float) -> None:
    with pytest.raises(ov.InvalidPrompt, match=r"finite|positive"):
        make(bad)


@pytest.mark.parametrize("color", ["pink", "", "255,0", "1,2,3,4", "#12345", "#gg0000", "red;"])
def test_bad_colour_names_are_refused_and_list_the_palette(color: str) -> None:
    with pytest.raises(ov.InvalidPrompt) as info:
        ov.Style(color=color)
    message = str(info.value)
    assert "unknown colour" in message
    assert all(name in message for name in ov.PALETTE)
    assert "R,G,B" in message


@pytest.mark.parametrize(
    "color", [(256, 0, 0), (-1, 0, 0), (1.5, 0, 0), (1, 2), (1, 2, 3, 4), "300,0,0", "-1,0,0"]
)
def test_bad_rgb_components_are_refused(color: Any) -> None:
    with pytest.raises(ov.InvalidPrompt, match=r"0\.\.255|three components|unknown colour"):
        ov.Style(color=color)


@pytest.mark.parametrize("alpha", [-1, 256, 1000, 1.5, "128", None, True])
def test_alpha_out_of_range_or_not_an_integer_is_refused(alpha: Any) -> None:
    with pytest.raises(ov.InvalidPrompt, match=r"alpha .*0\.\.255"):
        ov.Style(alpha=alpha)


@pytest.mark.parametrize("width", [0, -3, NAN, INF, None, "3", True, [3]])
def test_width_must_be_a_positive_finite_number(width: Any) -> None:
    with pytest.raises(ov.InvalidPrompt, match="width"):
        ov.Style(width=width)


def test_width_is_at_most_64_model_units() -> None:
    # A contour of width w is a (2·w·s+1)² dilation: an unbounded width exhausts memory.
    assert ov.Style(width=64).width == 64.0
    with pytest.raises(ov.InvalidPrompt, match=r"width 65 is more than 64: .*model units"):
        ov.Style(width=65)
    with pytest.raises(ov.InvalidPrompt, match="more than 64"):
        ov.Style(width=1e6)


@pytest.mark.parametrize(
    ("given_color", "stored"),
    [
        ("red", "red"),
        (" Blue ", "blue"),
        ((255, 165, 0), "orange"),  # a palette RGB becomes its name
        ([255, 215, 0], "gold"),
        ("#ff00ff", "fuchsia"),
        ("0, 255, 255", "aqua"),
        ((1, 2, 3), (1, 2, 3)),
        ("#010203", (1, 2, 3)),
        ("1,2,3", (1, 2, 3)),
    ],
)
def test_colours_are_normalised(given_color: Any, stored: str | tuple[int, int, int]) -> None:
    style = ov.Style(color=given_color)
    assert style.color == stored
    assert style.color_name == (stored if isinstance(stored, str) else None)


def test_default_style_is_the_cli_constant_style() -> None:
    style = ov.Style()
    assert (style.color, style.alpha, style.width) == ("red", 128, 3.0)
    assert style.rgba == (255, 0, 0, 128)
    assert ov.Contour((((0, 0), (5, 0), (0, 5)),)).style.width == 1.0
    assert ov.Rectangle((0, 0, 1, 1)).style == style


def test_an_explicitly_closed_ring_is_the_same_polygon() -> None:
    open_ring = ov.Mask((((0, 0), (10, 0), (0, 10)),))
    closed = ov.Mask((((0, 0), (10, 0), (0, 10), (0, 0)),))
    assert open_ring == closed


# --------------------------------------------------------------------------- properties


@FAST
@given(
    x1=st.floats(-1e6, 1e6),
    y1=st.floats(-1e6, 1e6),
    dx=st.floats(-1e6, 0),
    dy=st.floats(-1e6, 1e6),
    swap=st.booleans(),
)
def test_any_empty_or_reversed_box_is_refused(
    x1: float, y1: float, dx: float, dy: float, swap: bool
) -> None:
    # dx <= 0: x2 <= x1. With swap, the same for y.
    box = (x1, y1, x1 + dx, y1 + dy) if not swap else (y1, x1, y1 + dy, x1 + dx)
    for cls in (ov.Rectangle, ov.Ellipse):
        with pytest.raises(ov.InvalidPrompt, match="empty or reversed"):
            cls(box)


@FAST
@given(box=boxes((1000, 800)))
def test_any_proper_box_is_accepted_as_floats(box: ov.Box) -> None:
    rect = ov.Rectangle(tuple(int(v) if v.is_integer() else v for v in box))  # type: ignore[arg-type]
    assert rect.box == box and all(type(v) is float for v in rect.box)


@FAST
@given(
    kind=st.sampled_from(ov.KINDS),
    data=st.data(),
    bad=st.sampled_from(NON_FINITE),
)
def test_a_non_finite_coordinate_anywhere_is_refused(
    kind: str, data: st.DataObject, bad: float
) -> None:
    prompt = data.draw(MAKERS[kind]((300, 200)))
    payload = ov.prompt_to_dict(prompt)
    numbers = _number_paths(payload)
    path = data.draw(st.sampled_from(numbers))
    _set(payload, path, bad)
    with pytest.raises(ov.InvalidPrompt):
        ov.prompt_from_dict(payload)


def _number_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to the float coordinates and sizes of a prompt dict (not colour or alpha)."""
    if isinstance(node, dict):
        return [
            p
            for k, v in node.items()
            if k not in ("style", "kind", "label", "filled", "bezier")
            for p in _number_paths(v, (*path, k))
        ]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _number_paths(v, (*path, i))]
    return [path] if isinstance(node, float) else []


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@FAST
@given(
    x=st.integers(-10_000, 10_000),
    y=st.integers(-10_000, 10_000),
    dx=st.integers(-1000, 1000),
    dy=st.integers(-1000, 1000),
    ts=st.lists(st.integers(-10, 10), min_size=3, max_size=6, unique=True),
)
def test_collinear_points_never_make_a_polygon_or_triangle(
    x: int, y: int, dx: int, dy: int, ts: list[int]
) -> None:
    # Integers keep the points exactly collinear (float products would not be).
    pts = tuple((float(x + t * dx), float(y + t * dy)) for t in ts)
    with pytest.raises(ov.InvalidPrompt):
        ov.Mask((pts,))
    with pytest.raises(ov.InvalidPrompt):
        ov.Triangle((pts[0], pts[1], pts[2]))


@FAST
@given(ring=rings((500, 500)))
def test_a_ring_is_accepted_exactly_when_shapely_finds_it_simple(ring: tuple[ov.Pt, ...]) -> None:
    poly = Polygon(ring)
    if poly.is_valid and poly.area > 0:
        assert ov.Mask((ring,)).polygons == (ring,)
    else:
        with pytest.raises(ov.InvalidPrompt):
            ov.Mask((ring,))


@FAST
@given(
    a=st.tuples(st.floats(-100, 100), st.floats(-100, 100)),
    b=st.tuples(st.floats(-100, 100), st.floats(-100, 100)),
)
def test_a_bow_tie_is_refused(a: ov.Pt, b: ov.Pt) -> None:
    # Corners of a box visited in crossing order: (x1,y1) (x2,y2) (x2,y1) (x1,y2).
    (x1, x2), (y1, y2) = sorted((a[0], b[0])), sorted((a[1], b[1]))
    if x1 == x2 or y1 == y2:
        return
    with pytest.raises(ov.InvalidPrompt, match="not a simple polygon"):
        ov.Mask((((x1, y1), (x2, y2), (x2, y1), (x1, y2)),))


# --------------------------------------------------------------------------- fit_to_image

OUTSIDE = [
    ov.Rectangle((110, 10, 150, 50)),
    ov.Rectangle((-50, -40, -1, -0.5)),
    ov.Rectangle((100, 0, 140, 80)),  # touches the right border only
    ov.Ellipse((10, -90, 60, -5)),
    ov.Point((100.5, 40)),
    ov.Point((-0.1, -0.1)),
    ov.Triangle(((101, 0), (150, 10), (120, 60))),
    ov.Arrow((200, 200), (150, 180)),
    ov.Scribble(((-10, -10), (-50, 70))),
    ov.Mask((((0, 80), (50, 80), (30, 120)),)),  # touches the bottom border at one edge
    ov.Contour((((-30, 10), (-5, 10), (-5, 40)),)),
]


@pytest.mark.parametrize("prompt", OUTSIDE, ids=lambda p: p.kind)
def test_fit_to_image_refuses_prompts_entirely_outside(prompt: ov.Prompt) -> None:
    with pytest.raises(ov.PromptOutsideImage) as info:
        ov.fit_to_image(prompt, (100, 80))
    message = str(info.value)
    assert "outside" in message and "100×80" in message and prompt.kind in message
    assert isinstance(info.value, ov.InvalidPrompt)


def test_fit_to_image_keeps_a_partly_outside_rectangle_and_clips_its_stored_region() -> None:
    # The original draws it unclipped (PIL cuts it at the canvas edge); a clipped box would
    # gain an edge along x=0. The data it refers to is clipped.
    rect = ov.Rectangle((-10.5, 20, 150, 90.25), style=ov.Style("blue", 200, 5), label="cup")
    assert ov.fit_to_image(rect, (100, 80)) == rect
    stored = ov.fit_region(rect.marked_region(), (100, 80))
    assert stored.box == (0.0, 20.0, 100.0, 80.0)


def test_fit_to_image_keeps_an_inside_prompt_unchanged() -> None:
    rect = ov.Rectangle((0, 0, 100, 80))
    assert ov.fit_to_image(rect, (100, 80)) == rect


def test_the_stored_region_of_a_partly_outside_mask_is_clipped() -> None:
    ring = ((-20.0, -10.0), (60.0, -10.0), (60.0, 50.0))
    mask = ov.Mask((ring, ((10.0, 60.0), (30.0, 60.0), (20.0, 70.0))))
    assert ov.fit_to_image(mask, (100, 80)) == mask  # drawn as given
    stored = ov.fit_region(mask.marked_region(), (100, 80))
    assert stored.polygons is not None
    frame = shapely_box(0, 0, 100, 80)
    clipped = Polygon(stored.polygons[0])
    assert frame.covers(clipped)
    expected = Polygon(ring).intersection(frame)
    assert clipped.symmetric_difference(expected).area < 1e-9
    assert stored.polygons[1] == mask.polygons[1]  # the inside polygon is kept as given


def test_the_stored_region_drops_polygons_outside_and_keeps_the_rest() -> None:
    inside = ((10.0, 10.0), (30.0, 10.0), (20.0, 30.0))
    outside = ((200.0, 10.0), (230.0, 10.0), (220.0, 30.0))
    contour = ov.Contour((inside, outside))
    assert ov.fit_to_image(contour, (100, 80)) == contour
    assert ov.fit_region(contour.marked_region(), (100, 80)).polygons == (inside,)


def test_the_stored_region_splits_a_polygon_the_border_cuts_in_two() -> None:
    # A U shape whose bottom lies below the image: two separate prongs remain.
    u: tuple[ov.Pt, ...] = ((10.0, 10.0), (20.0, 10.0), (20.0, 100.0), (60.0, 100.0))
    u = (*u, (60.0, 10.0), (70.0, 10.0), (70.0, 120.0), (10.0, 120.0))
    stored = ov.fit_region(ov.Mask((u,)).marked_region(), (100, 80))
    assert stored.polygons is not None and len(stored.polygons) == 2
    total = sum(Polygon(r).area for r in stored.polygons)
    assert total == pytest.approx(2 * 10 * 70)


@pytest.mark.parametrize(
    "prompt",
    [
        ov.Rectangle((-500, 10, 50, 50)),
        ov.Ellipse((-1e9, 10, 50, 50)),
        ov.Arrow((10, 10), (1e308, 1e308)),
        ov.Arrow((90, 70), (20, 20), head=1e9),
        ov.Scribble(((10, 10), (50, 3e9))),
        ov.Point((50, 40), radius=1e9),
        ov.Point((50, 40), aspect=1e-12),
        ov.Contour((((10.0, 10.0), (50.0, 10.0), (30.0, 1e7)),)),
    ],
    ids=lambda p: p.kind,
)
def test_fit_to_image_refuses_prompts_reaching_far_outside(prompt: ov.Prompt) -> None:
    # Drawn unclipped, a 1e9-pixel ellipse costs PIL seconds to minutes: refuse, saying how.
    with pytest.raises(ov.PromptOutsideImage, match="image sides outside the 100×80 image"):
        ov.fit_to_image(prompt, (100, 80))


def test_fit_to_image_accepts_prompts_a_few_sides_outside() -> None:
    arrow = ov.Arrow((-350, -300), (20, 20))
    assert ov.fit_to_image(arrow, (100, 80)) == arrow


@pytest.mark.parametrize(
    "prompt",
    [
        ov.Arrow((-40, -40), (20, 30), head=10, filled=False, bend=(-10, 10)),
        ov.Scribble(((-50, 10), (50, 40), (150, 10))),
        ov.Scribble(((-50, 10), (50, 40), (90, 100), (150, 10)), bezier=True),
        ov.Triangle(((-20, -20), (50, 40), (130, 10))),
        ov.Ellipse((-30, -30, 50, 50)),
        ov.Point((0, 0)),
        ov.Point((100, 80)),
    ],
    ids=lambda p: p.kind,
)
def test_fit_to_image_keeps_strokes_unchanged(prompt: ov.Prompt) -> None:
    assert ov.fit_to_image(prompt, (100, 80)) == prompt


def test_fit_to_image_clips_the_explicit_region_too() -> None:
    region = ov.Region((-10, -10, 50, 50), polygons=(((-10, -10), (50, -10), (20, 50)),))
    arrow = ov.Arrow((90, 70), (20, 20), region=region)
    fitted = ov.fit_to_image(arrow, (100, 80))
    assert fitted.region is not None and fitted.region.box == (0.0, 0.0, 50.0, 50.0)
    assert fitted.region.polygons is not None
    assert shapely_box(0, 0, 100, 80).covers(Polygon(fitted.region.polygons[0]))
    assert isinstance(fitted, ov.Arrow)
    assert (fitted.tail, fitted.tip) == (arrow.tail, arrow.tip)


def test_fit_region_refuses_a_region_outside() -> None:
    with pytest.raises(ov.PromptOutsideImage, match="outside the 100×80 image"):
        ov.fit_region(ov.Region((120, 10, 150, 60)), (100, 80))


def _interiors_meet(a: Polygon, b: Polygon) -> bool:
    """True when the shapes share an interior point (DE-9IM), even a minute one."""
    return bool(a.relate_pattern(b, "T********"))


@FAST
@given(box=boxes((100, 80), margin=1.0))
def test_fit_to_image_on_any_rectangle(box: ov.Box) -> None:
    frame = shapely_box(0, 0, 100, 80)
    rect = ov.Rectangle(box)
    if not _interiors_meet(frame, shapely_box(*box)):
        with pytest.raises(ov.PromptOutsideImage):
            ov.fit_to_image(rect, (100, 80))
        return
    assert ov.fit_to_image(rect, (100, 80)) == rect
    stored = ov.fit_region(rect.marked_region(), (100, 80))
    x1, y1, x2, y2 = box
    assert stored.box == (max(x1, 0.0), max(y1, 0.0), min(x2, 100.0), min(y2, 80.0))
    x1, y1, x2, y2 = stored.box
    assert 0 <= x1 < x2 <= 100 and 0 <= y1 < y2 <= 80


@FAST
@given(ring=rings((100, 80), margin=0.5))
def test_fit_to_image_on_any_polygon(ring: tuple[ov.Pt, ...]) -> None:
    try:
        mask = ov.Mask((ring,))
    except ov.InvalidPrompt:
        return
    frame = shapely_box(0, 0, 100, 80)
    overlap = frame.intersection(Polygon(ring))
    meets = _interiors_meet(frame, Polygon(ring))
    # Float slivers with an overlap of 1e-37 px² may go either way; nothing draws them.
    assume(not meets or overlap.area > 1e-6)
    if not meets:
        with pytest.raises(ov.PromptOutsideImage):
            ov.fit_to_image(mask, (100, 80))
        return
    assert ov.fit_to_image(mask, (100, 80)) == mask
    stored = ov.fit_region(mask.marked_region(), (100, 80))
    assert stored.polygons is not None
    area = sum(Polygon(r).area for r in stored.polygons)
    assert area == pytest.approx(overlap.area, rel=1e-9, abs=1e-6)
    for r in stored.polygons:
        assert frame.covers(Polygon(r))


def test_numpy_scalars_are_numbers_and_become_plain_python_values() -> None:
    """Coordinates and colours often come from numpy arrays (masks, model output, pixels)."""
    import numpy as np

    box: Any = tuple(np.array([1, 2, 30, 40], dtype=np.int64))
    rect = ov.Rectangle(box)
    assert rect.box == (1.0, 2.0, 30.0, 40.0)
    center: Any = (np.float32(3.5), np.float64(4.25))
    radius: Any = np.int32(6)
    point = ov.Point(center, radius=radius)
    assert point.center == (3.5, 4.25) and point.radius == 6.0
    pixel: Any = tuple(np.array([12, 34, 56], dtype=np.uint8))
    alpha: Any = np.int64(100)
    width: Any = np.float32(2.5)
    style = ov.Style(color=pixel, alpha=alpha, width=width)
    assert style.color == (12, 34, 56) and style.alpha == 100 and style.width == 2.5
    assert type(style.alpha) is int and all(type(c) is int for c in style.rgb)
    # ...so the JSON form is plain and round-trips.
    styled = ov.Rectangle((0, 0, 5, 5), style=style)
    assert ov.loads(ov.dumps([styled])) == [styled]
    red: Any = tuple(np.array([255, 0, 0], dtype=np.uint8))
    assert ov.Style(color=red).color == "red"


@pytest.mark.parametrize("color", [5, None, 3.0, object()])
def test_a_colour_that_is_not_a_name_or_triple_is_refused(color: Any) -> None:
    with pytest.raises(ov.InvalidPrompt, match="colour"):
        ov.Style(color=color)
