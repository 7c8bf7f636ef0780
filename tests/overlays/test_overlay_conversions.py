"""Conversions from COCO xywh, normalised boxes and flat polygon lists, and region masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

import overlays as ov

FAST = settings(max_examples=60, deadline=None)
finite = st.floats(-1e6, 1e6)


def test_box_from_xywh() -> None:
    assert ov.box_from_xywh(10, 20, 30, 40) == (10.0, 20.0, 40.0, 60.0)
    assert ov.box_from_xywh(0.5, 0.25, 1, 2) == (0.5, 0.25, 1.5, 2.25)
    with pytest.raises(ov.InvalidPrompt, match="empty or reversed"):
        ov.box_from_xywh(10, 20, 0, 40)
    with pytest.raises(ov.InvalidPrompt, match="empty or reversed"):
        ov.box_from_xywh(10, 20, 5, -1)
    with pytest.raises(ov.InvalidPrompt, match="finite"):
        ov.box_from_xywh(10, 20, float("nan"), 3)


@FAST
@given(x=finite, y=finite, w=st.integers(1, 10_000), h=st.integers(1, 10_000))
def test_box_from_xywh_keeps_size(x: float, y: float, w: int, h: int) -> None:
    x1, y1, x2, y2 = ov.box_from_xywh(x, y, w, h)
    assert (x1, y1) == (x, y)
    assert x2 == x + w and y2 == y + h


def test_box_from_normalized() -> None:
    assert ov.box_from_normalized((0.1, 0.2, 0.5, 1.0), (200, 100)) == (20.0, 20.0, 100.0, 100.0)
    assert ov.box_from_normalized([0, 0, 1, 1], (640, 480)) == (0.0, 0.0, 640.0, 480.0)
    with pytest.raises(ov.InvalidPrompt, match=r"within 0\.\.1"):
        ov.box_from_normalized((0.1, 0.2, 1.5, 0.9), (200, 100))
    with pytest.raises(ov.InvalidPrompt, match=r"within 0\.\.1"):
        ov.box_from_normalized((-0.1, 0.2, 0.5, 0.9), (200, 100))
    with pytest.raises(ov.InvalidPrompt, match="reversed"):
        ov.box_from_normalized((0.5, 0.2, 0.1, 0.9), (200, 100))


@FAST
@given(
    a=st.floats(0, 1),
    b=st.floats(0, 1),
    c=st.floats(0, 1),
    d=st.floats(0, 1),
    size=st.tuples(st.integers(1, 8000), st.integers(1, 8000)),
)
def test_box_from_normalized_scales_each_axis(
    a: float, b: float, c: float, d: float, size: tuple[int, int]
) -> None:
    (x1, x2), (y1, y2) = sorted((a, b)), sorted((c, d))
    if x1 == x2 or y1 == y2:
        return
    w, h = size
    assert ov.box_from_normalized((x1, y1, x2, y2), size) == (x1 * w, y1 * h, x2 * w, y2 * h)


def test_points_from_flat_and_back() -> None:
    assert ov.points_from_flat([1, 2, 3.5, 4, 5, 6]) == ((1.0, 2.0), (3.5, 4.0), (5.0, 6.0))
    assert ov.flat_from_points(((1.0, 2.0), (3.5, 4.0))) == [1.0, 2.0, 3.5, 4.0]
    assert ov.points_from_flat([]) == ()
    with pytest.raises(ov.InvalidPrompt, match="even number of values, got 5"):
        ov.points_from_flat([1, 2, 3, 4, 5])
    with pytest.raises(ov.InvalidPrompt, match="point 1 y"):
        ov.points_from_flat([1, 2, 3, float("inf")])
    with pytest.raises(ov.InvalidPrompt, match="must be a number"):
        ov.points_from_flat([1, 2, "3", 4])  # type: ignore[list-item]


@FAST
@given(flat=st.lists(finite, max_size=40).filter(lambda v: len(v) % 2 == 0))
def test_flat_lists_round_trip(flat: list[float]) -> None:
    points = ov.points_from_flat(flat)
    assert len(points) == len(flat) // 2
    assert ov.flat_from_points(points) == flat


def test_coco_segmentation_to_a_mask_prompt() -> None:
    segmentation = [[10, 10, 60, 12, 50, 40], [70, 70, 90, 70, 80, 95]]
    region = ov.Region.from_polygons([ov.points_from_flat(s) for s in segmentation])
    assert region.box == (10.0, 10.0, 90.0, 95.0)
    mask = ov.generate("mask", region, (100, 100), rng=0)
    assert isinstance(mask, ov.Mask)
    assert [ov.flat_from_points(r) for r in mask.polygons] == [
        [float(v) for v in s] for s in segmentation
    ]


# --------------------------------------------------------------------------- region masks


def test_region_mask_of_a_box_has_shape_h_w() -> None:
    region = ov.Region((10, 20, 30, 40))
    mask = ov.region_mask(region, (64, 48))
    assert mask.shape == (48, 64) and mask.dtype == bool
    ys, xs = np.nonzero(mask)
    # PIL fills a box including both corner pixels: columns 10..30, rows 20..40.
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 30, 20, 40)
    assert mask.sum() == 21 * 21


def test_region_mask_of_polygons_uses_the_polygons_not_the_box() -> None:
    tri = ((10.0, 10.0), (90.0, 10.0), (10.0, 70.0))
    square = ((100.0, 50.0), (140.0, 50.0), (140.0, 90.0), (100.0, 90.0))
    region = ov.Region.from_polygons([tri, square])
    mask = ov.region_mask(region, (160, 100))
    assert mask.shape == (100, 160)
    assert mask[20, 20] and mask[70, 120]
    assert not mask[65, 85]  # inside the box, outside the triangle
    assert not mask[30, 95]  # between the two polygons
    expected = Polygon(tri).area + Polygon(square).area
    perimeter = Polygon(tri).length + Polygon(square).length
    assert abs(int(mask.sum()) - expected) <= perimeter  # rasterised within a pixel of the edge


def test_region_mask_is_clipped_to_the_image() -> None:
    mask = ov.region_mask(ov.Region((-20, -20, 10, 5)), (30, 20))
    assert mask.shape == (20, 30)
    assert mask[0, 0] and mask[5, 10] and not mask[6, 0] and not mask[0, 11]
