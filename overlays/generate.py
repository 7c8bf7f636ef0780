"""Prompts generated from a region the way ViP-LLaVA's training data was (docs/VIP_FACTS.md §1).

Each function takes the region (a box and optionally polygons), the image size (the scale
``s = max(W, H) / 336`` sets lengths), a seeded ``random.Random`` and a style, and returns a
concrete prompt whose rendering is then deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon

from overlays.errors import InvalidPrompt
from overlays.prompts import (
    Arrow,
    Contour,
    Ellipse,
    Mask,
    Point,
    Prompt,
    Pt,
    Rectangle,
    Region,
    Scribble,
    Triangle,
)
from overlays.style import Style, sample_style, scale_of


def generate(
    kind: str,
    region: Region,
    image_size: tuple[int, int],
    rng: random.Random | int | None = None,
    style: Style | None = None,
    label: str | None = None,
    radius: float = 8.0,
) -> Prompt:
    """A ``kind`` prompt marking ``region``, sampled as in training, reproducible from ``rng``.

    ``rng`` may be a seed. ``style`` defaults to the CLI "constant" style (red, alpha 128,
    width 3; contour width 1); pass :func:`overlays.sample_style` output for training-like
    variety. ``radius`` (model units) is the size of a point.
    """
    if kind == "mask contour":
        kind = "contour"
    maker = _MAKERS.get(kind)
    if maker is None:
        raise InvalidPrompt(f"unknown prompt kind {kind!r}: use one of {', '.join(_MAKERS)}")
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    if style is None:
        style = Style(width=1.0) if kind == "contour" else Style()
    if kind == "point":
        return _point(region, scale_of(image_size), rng, style, label, radius)
    return maker(region, scale_of(image_size), rng, style, label)


def generate_sampled(
    kind: str,
    region: Region,
    image_size: tuple[int, int],
    rng: random.Random | int | None = None,
    label: str | None = None,
) -> Prompt:
    """Like :func:`generate`, with the style also drawn from the training distribution."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    style = sample_style(kind, rng)
    # A point's training size is its radius, 5..20 units; sample_style puts it in `width`.
    radius = style.width if kind == "point" else 8.0
    return generate(kind, region, image_size, rng, style, label, radius=radius)


def _rectangle(
    region: Region, s: float, rng: random.Random, style: Style, label: str | None
) -> Prompt:
    return Rectangle(region.box, style=style, label=label, region=region)


def _ellipse(
    region: Region, s: float, rng: random.Random, style: Style, label: str | None
) -> Prompt:
    # Training scaled the region's box (or its polygons' bounds) about the centre by U(1, 1.5).
    x1, y1, x2, y2 = region.geometry().bounds if region.polygons else region.box
    ratio = rng.uniform(1.0, 1.5)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = (x2 - x1) * ratio / 2, (y2 - y1) * ratio / 2
    return Ellipse((cx - hw, cy - hh, cx + hw, cy + hh), style=style, label=label, region=region)


def _sampler(region: Region, rng: random.Random, whole: bool) -> Callable[[], Pt]:
    """Uniform points inside the region: its polygon(s) by rejection (50 tries), else its box."""
    if region.polygons:
        geom = region.geometry() if whole else Polygon(rng.choice(region.polygons))
        minx, miny, maxx, maxy = geom.bounds

        def inside() -> Pt:
            for _ in range(50):
                x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
                if geom.contains(ShapelyPoint(x, y)):
                    return (x, y)
            return (rng.uniform(minx, maxx), rng.uniform(miny, maxy))

        return inside
    x1, y1, x2, y2 = region.box
    return lambda: (rng.uniform(x1, x2), rng.uniform(y1, y2))


def _max_angle_ok(points: list[Pt]) -> bool:
    p = np.asarray(points, dtype=float)
    for i in range(3):
        a, b, c = p[i], p[(i + 1) % 3], p[(i + 2) % 3]
        u, v = a - b, c - b
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        if nu == 0 or nv == 0:
            return False
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(u @ v / (nu * nv))))))
        if angle > 150:
            return False
    return True


def _triangle(
    region: Region, s: float, rng: random.Random, style: Style, label: str | None
) -> Prompt:
    sample = _sampler(region, rng, whole=True)
    for _ in range(1000):
        pts = [sample(), sample(), sample()]
        if _max_angle_ok(pts) and Polygon(pts).area > 0:
            return Triangle((pts[0], pts[1], pts[2]), style=style, label=label, region=region)
    raise InvalidPrompt(f"region {region.box} is too thin to hold a triangle with no angle > 150°")


def _point(
    region: Region,
    s: float,
    rng: random.Random,
    style: Style,
    label: str | None,
    radius: float = 8.0,
) -> Prompt:
    # Normal around the centre with covariance diag(w/8, h/8) (variances, as in training),
    # up to 10 tries to land inside one of the region's polygons.
    target = Polygon(rng.choice(region.polygons)) if region.polygons else None
    minx, miny, maxx, maxy = target.bounds if target is not None else region.box
    mean = ((minx + maxx) / 2, (miny + maxy) / 2)
    sd = (math.sqrt((maxx - minx) / 8), math.sqrt((maxy - miny) / 8))
    cx, cy = rng.gauss(mean[0], sd[0]), rng.gauss(mean[1], sd[1])
    for _ in range(10):
        if target is None or target.contains(ShapelyPoint(cx, cy)):
            break
        cx, cy = rng.gauss(mean[0], sd[0]), rng.gauss(mean[1], sd[1])
    aspect = 1.0 if rng.random() < 0.5 else rng.uniform(0.5, 2.0)
    return Point((cx, cy), radius=radius, aspect=aspect, style=style, label=label, region=region)


def _scribble(
    region: Region, s: float, rng: random.Random, style: Style, label: str | None
) -> Prompt:
    sample = _sampler(region, rng, whole=False)
    controls = tuple(sample() for _ in range(4))
    if all(p == controls[0] for p in controls):
        raise InvalidPrompt(f"region {region.box} is a single point: it cannot hold a scribble")
    return Scribble(controls, bezier=True, style=style, label=label, region=region)


def _mask(region: Region, s: float, rng: random.Random, style: Style, label: str | None) -> Prompt:
    return Mask(_rings_or_box(region), style=style, label=label, region=region)


def _contour(
    region: Region, s: float, rng: random.Random, style: Style, label: str | None
) -> Prompt:
    return Contour(_rings_or_box(region), style=style, label=label, region=region)


def _rings_or_box(region: Region) -> tuple[tuple[Pt, ...], ...]:
    if region.polygons:
        return region.polygons
    x1, y1, x2, y2 = region.box
    return (((x1, y1), (x1, y2), (x2, y2), (x2, y1)),)


def _arrow(region: Region, s: float, rng: random.Random, style: Style, label: str | None) -> Prompt:
    x1, y1, x2, y2 = region.box
    w, h = x2 - x1, y2 - y1
    max_length = max(int(50 * s), 1)
    length = rng.uniform(0.8 * min(w, h), max_length)
    angle = rng.uniform(0, 2 * math.pi)
    tip = (
        (x1 + x2) / 2 + rng.uniform(-0.25, 0.25) * w,
        (y1 + y2) / 2 + rng.uniform(-0.25, 0.25) * h,
    )
    head = max(rng.uniform(0.2, 0.5) * length, int(6 * s))
    shaft = length - head
    if shaft <= 0:
        shaft = head  # a tiny region on a tiny image: keep a visible shaft
    tail = (tip[0] + shaft * math.cos(angle), tip[1] + shaft * math.sin(angle))
    bend = None
    if rng.random() < 0.5:
        # The "wobble" of hand-drawn arrows; int(s) as in training, so none below 336 px.
        jitter = int(s)
        bend = (
            (tip[0] + tail[0]) / 2 + rng.uniform(-5, 5) * jitter,
            (tip[1] + tail[1]) / 2 + rng.uniform(-5, 5) * jitter,
        )
    filled = rng.random() < 0.5
    return Arrow(
        tail, tip, head=head, filled=filled, bend=bend, style=style, label=label, region=region
    )


_MAKERS: dict[str, Callable[[Region, float, random.Random, Style, str | None], Prompt]] = {
    "rectangle": _rectangle,
    "ellipse": _ellipse,
    "point": _point,
    "triangle": _triangle,
    "arrow": _arrow,
    "scribble": _scribble,
    "mask": _mask,
    "contour": _contour,
}
