"""Prompts generated from a region the way ViP-LLaVA's training data was (docs/VIP_FACTS.md §1)."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon

import overlays as ov
from overlays.render import bezier_points

SIZE = (672, 504)  # s = 2: training lengths are easy to check by hand
S = max(SIZE) / 336
BOX_REGION = ov.Region((100.0, 80.0, 300.0, 240.0))
CONVEX = ((120.0, 100.0), (330.0, 140.0), (300.0, 300.0), (150.0, 280.0))
SECOND = ((400.0, 300.0), (500.0, 310.0), (450.0, 420.0))
POLY_REGION = ov.Region.from_polygons([CONVEX])
TWO_POLYS = ov.Region.from_polygons([CONVEX, SECOND])
RANDOM_KINDS = ["ellipse", "point", "triangle", "arrow", "scribble"]
SEEDS = range(150)


@pytest.mark.parametrize("region", [BOX_REGION, POLY_REGION, TWO_POLYS], ids=["box", "poly", "two"])
@pytest.mark.parametrize("kind", ov.KINDS)
def test_same_seed_gives_the_same_prompt(kind: str, region: ov.Region) -> None:
    a = ov.generate(kind, region, SIZE, rng=1234)
    b = ov.generate(kind, region, SIZE, rng=1234)
    c = ov.generate(kind, region, SIZE, rng=random.Random(1234))
    assert a == b == c
    assert ov.generate_sampled(kind, region, SIZE, rng=9) == ov.generate_sampled(
        kind, region, SIZE, rng=9
    )


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_different_seeds_give_different_prompts(kind: str) -> None:
    prompts = {ov.dumps([ov.generate(kind, POLY_REGION, SIZE, rng=seed)]) for seed in range(10)}
    assert len(prompts) == 10


@pytest.mark.parametrize("kind", ["rectangle", "mask", "contour"])
def test_deterministic_kinds_follow_the_region_exactly(kind: str) -> None:
    prompts = [ov.generate(kind, BOX_REGION, SIZE, rng=seed) for seed in range(5)]
    assert all(p == prompts[0] for p in prompts)
    if kind == "rectangle":
        assert isinstance(prompts[0], ov.Rectangle)
        assert prompts[0].box == BOX_REGION.box
    else:
        x1, y1, x2, y2 = BOX_REGION.box
        assert isinstance(prompts[0], ov.Mask | ov.Contour)
        assert Polygon(prompts[0].polygons[0]).equals(
            Polygon([(x1, y1), (x2, y1), (x2, y2), (x1, y2)])
        )
        with_polys = ov.generate(kind, TWO_POLYS, SIZE, rng=0)
        assert isinstance(with_polys, ov.Mask | ov.Contour)
        assert with_polys.polygons == TWO_POLYS.polygons


@pytest.mark.parametrize("kind", ov.KINDS)
def test_defaults_region_and_label(kind: str) -> None:
    prompt = ov.generate(kind, POLY_REGION, SIZE, rng=3, label="cat")
    assert prompt.kind == kind and prompt.label == "cat"
    assert prompt.region == POLY_REGION
    expected_width = 1.0 if kind == "contour" else 3.0
    assert prompt.style == ov.Style("red", 128, expected_width)
    assert ov.generate("mask contour", POLY_REGION, SIZE, rng=3).kind == "contour"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ov.InvalidPrompt, match="unknown prompt kind 'hexagon'"):
        ov.generate("hexagon", BOX_REGION, SIZE, rng=0)
    with pytest.raises(ov.InvalidPrompt, match="unknown prompt kind"):
        ov.sample_style("hexagon", random.Random(0))


# --------------------------------------------------------------------------- inside the region


def _inside(region: ov.Region, pt: ov.Pt) -> bool:
    if region.polygons:
        return any(Polygon(r).covers(ShapelyPoint(pt)) for r in region.polygons)
    x1, y1, x2, y2 = region.box
    return x1 <= pt[0] <= x2 and y1 <= pt[1] <= y2


@pytest.mark.parametrize("region", [BOX_REGION, POLY_REGION, TWO_POLYS], ids=["box", "poly", "two"])
def test_triangles_lie_in_the_region_with_no_angle_over_150(region: ov.Region) -> None:
    for seed in SEEDS:
        tri = ov.generate("triangle", region, SIZE, rng=seed)
        assert isinstance(tri, ov.Triangle)
        assert all(_inside(region, p) for p in tri.points), (seed, tri.points)
        a, b, c = (np.asarray(p) for p in tri.points)
        sides = [np.linalg.norm(b - c), np.linalg.norm(a - c), np.linalg.norm(a - b)]
        for i in range(3):  # law of cosines, angle opposite side i
            x, y, z = sides[i], sides[(i + 1) % 3], sides[(i + 2) % 3]
            angle = math.degrees(math.acos(np.clip((y * y + z * z - x * x) / (2 * y * z), -1, 1)))
            assert angle <= 150.0 + 1e-9, (seed, angle)


@pytest.mark.parametrize("region", [BOX_REGION, POLY_REGION, TWO_POLYS], ids=["box", "poly", "two"])
def test_scribbles_are_bezier_curves_inside_the_region(region: ov.Region) -> None:
    for seed in SEEDS:
        scribble = ov.generate("scribble", region, SIZE, rng=seed)
        assert isinstance(scribble, ov.Scribble) and scribble.bezier
        assert len(scribble.points) == 4
        # The controls lie in one polygon (as in training); a convex one then holds the curve.
        rings = region.polygons or (
            (
                (region.box[0], region.box[1]),
                (region.box[2], region.box[1]),
                (region.box[2], region.box[3]),
                (region.box[0], region.box[3]),
            ),
        )
        holder = [
            r for r in rings if all(Polygon(r).covers(ShapelyPoint(p)) for p in scribble.points)
        ]
        assert holder, (seed, scribble.points)
        curve = bezier_points(scribble.points, S)
        assert len(curve) == int(1000 * S)
        assert Polygon(holder[0]).buffer(1e-9).covers(ShapelyPoint(curve[len(curve) // 2]))


@pytest.mark.parametrize("region", [BOX_REGION, POLY_REGION], ids=["box", "poly"])
def test_points_land_near_the_centre_inside_the_region(region: ov.Region) -> None:
    x1, y1, x2, y2 = region.box
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    sd = np.sqrt(np.array([x2 - x1, y2 - y1]) / 8)  # covariance diag(w/8, h/8)
    centres = []
    aspects = []
    for seed in SEEDS:
        point = ov.generate("point", region, SIZE, rng=seed)
        assert isinstance(point, ov.Point)
        assert _inside(region, point.center)
        assert point.radius == 8.0
        centres.append(point.center)
        aspects.append(point.aspect)
    offsets = (np.asarray(centres) - centre) / sd
    assert np.all(np.abs(offsets) < 5)
    # Normal around the centre: mean ≈ 0, standard deviation ≈ 1 per axis.
    assert np.all(np.abs(offsets.mean(axis=0)) < 0.3)
    assert np.all(np.abs(offsets.std(axis=0) - 1) < 0.25)
    circles = sum(a == 1.0 for a in aspects)
    assert 0.35 < circles / len(aspects) < 0.65
    assert all(0.5 <= a <= 2.0 for a in aspects)


@pytest.mark.parametrize("region", [BOX_REGION, POLY_REGION], ids=["box", "poly"])
def test_ellipse_box_is_the_region_scaled_by_1_to_1_5_about_its_centre(region: ov.Region) -> None:
    x1, y1, x2, y2 = region.box
    ratios = []
    for seed in SEEDS:
        ellipse = ov.generate("ellipse", region, SIZE, rng=seed)
        assert isinstance(ellipse, ov.Ellipse)
        e1, f1, e2, f2 = ellipse.box
        assert (e1 + e2) / 2 == pytest.approx((x1 + x2) / 2)
        assert (f1 + f2) / 2 == pytest.approx((y1 + y2) / 2)
        rx, ry = (e2 - e1) / (x2 - x1), (f2 - f1) / (y2 - y1)
        assert rx == pytest.approx(ry)
        assert 1.0 - 1e-12 <= rx <= 1.5 + 1e-12
        ratios.append(rx)
    assert min(ratios) < 1.05 and max(ratios) > 1.45


def test_arrows_follow_the_training_geometry() -> None:
    x1, y1, x2, y2 = BOX_REGION.box
    w, h = x2 - x1, y2 - y1
    low, high = 0.8 * min(w, h), max(int(50 * S), 1)  # 128 and 100: uniform(a, b) with a > b
    bends = filled = 0
    angles = []
    for seed in SEEDS:
        arrow = ov.generate("arrow", BOX_REGION, SIZE, rng=seed)
        assert isinstance(arrow, ov.Arrow) and arrow.head is not None
        tx, ty = arrow.tip
        assert abs(tx - (x1 + x2) / 2) <= 0.25 * w + 1e-9
        assert abs(ty - (y1 + y2) / 2) <= 0.25 * h + 1e-9
        # Total length L = shaft + head, uniform between 0.8·min(w, h) and 50·s.
        total = arrow.length + arrow.head
        assert min(low, high) - 1e-9 <= total <= max(low, high) + 1e-9
        assert arrow.head >= int(6 * S)
        assert 0.2 * total - 1e-9 <= arrow.head <= 0.5 * total + 1e-9
        if arrow.bend is not None:
            bends += 1
            mx, my = (arrow.tip[0] + arrow.tail[0]) / 2, (arrow.tip[1] + arrow.tail[1]) / 2
            assert abs(arrow.bend[0] - mx) <= 5 * int(S) and abs(arrow.bend[1] - my) <= 5 * int(S)
        filled += arrow.filled
        angles.append(math.atan2(arrow.tail[1] - ty, arrow.tail[0] - tx))
    assert 0.35 < bends / len(SEEDS) < 0.65
    assert 0.35 < filled / len(SEEDS) < 0.65
    quadrants = Counter(int((a + math.pi) // (math.pi / 2)) % 4 for a in angles)
    assert len(quadrants) == 4  # random angle: every direction occurs


def test_arrow_length_range_when_the_region_is_small() -> None:
    region = ov.Region((300.0, 200.0, 340.0, 230.0))  # 0.8·min = 24 < 50·s = 100
    for seed in SEEDS:
        arrow = ov.generate("arrow", region, SIZE, rng=seed)
        assert isinstance(arrow, ov.Arrow) and arrow.head is not None
        total = arrow.length + arrow.head
        assert 24 - 1e-9 <= total <= 100 + 1e-9


def test_a_region_too_thin_for_a_triangle_is_refused_not_looped_on() -> None:
    thin = ov.Region((0.0, 0.0, 300.0, 1e-9))
    with pytest.raises(ov.InvalidPrompt, match="too thin"):
        ov.generate("triangle", thin, SIZE, rng=0)


# --------------------------------------------------------------------------- sampled styles


@pytest.mark.parametrize("kind", ov.KINDS)
def test_sampled_styles_stay_in_the_training_ranges(kind: str) -> None:
    rng = random.Random(2024)
    styles = [ov.sample_style(kind, rng) for _ in range(2000)]
    alphas = [s.alpha for s in styles]
    if kind == "mask":
        assert min(alphas) == 48 and max(alphas) == 128
    else:
        assert min(alphas) == 96 and max(alphas) == 255
    low, high = {
        "rectangle": (2, 8),
        "ellipse": (2, 8),
        "triangle": (2, 8),
        "point": (5, 20),
        "scribble": (2, 12),
        "mask": (0, 2),
        "contour": (1, 2),
        "arrow": (1, 6),
    }[kind]
    widths = [s.width for s in styles]
    assert all(max(low, 1.0) <= x <= high for x in widths)
    assert max(widths) > high - 0.1 * (high - low)
    named = [s for s in styles if s.color_name is not None]
    assert 0.45 < len(named) / len(styles) < 0.55
    assert {s.color_name for s in named} == set(ov.PALETTE)
    unnamed = [s.rgb for s in styles if s.color_name is None]
    assert len(set(unnamed)) > 0.95 * len(unnamed)  # random RGB, not a fixed few


@pytest.mark.parametrize("kind", ov.KINDS)
def test_generate_sampled_draws_the_style_from_training(kind: str) -> None:
    for seed in range(40):
        prompt = ov.generate_sampled(kind, POLY_REGION, SIZE, rng=seed)
        alpha_range = (48, 128) if kind == "mask" else (96, 255)
        assert alpha_range[0] <= prompt.style.alpha <= alpha_range[1]
        if isinstance(prompt, ov.Point):
            assert 5 <= prompt.radius <= 20  # a point's training size is its radius
