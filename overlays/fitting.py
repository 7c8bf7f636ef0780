"""Prompts against an image and against limits: what may be drawn, and the clipped regions.

A prompt is drawn as given, as the original does; only the data it refers to is clipped to the
image. How far outside the image a prompt may reach is limited (:data:`FAR_OUTSIDE`).
"""

from __future__ import annotations

from dataclasses import replace

from shapely.geometry import Polygon
from shapely.geometry import box as shapely_box

from overlays.errors import PromptOutsideImage
from overlays.prompts import (
    Arrow,
    Box,
    Point,
    Prompt,
    Region,
    Ring,
    _fmt,
)
from overlays.style import MODEL_SIDE

#: How far a prompt may reach beyond the image, in image sides (the longer one). The original
#: draws partly outside prompts unclipped, and PIL's cost grows with an ellipse's size however
#: little of it is on the canvas, so coordinates far out (wrong units, 1e308) are refused.
FAR_OUTSIDE = 4


def fit_to_image(prompt: Prompt, image_size: tuple[int, int]) -> Prompt:
    """Check ``prompt`` against an image of ``image_size`` = (W, H); clip its explicit region.

    Raises :class:`PromptOutsideImage` when nothing of it lies on the image, or when it reaches
    more than :data:`FAR_OUTSIDE` image sides beyond the image. The drawn shape is kept as
    given: like the original, a prompt partly outside is cut by the canvas edge only (a
    clipped rectangle would gain an edge along the border). Only the data it refers to is
    clipped: the explicit region here; for a derived one use
    ``fit_region(prompt.marked_region(), size)``, so that exported boxes lie inside the image.
    """
    w, h = image_size
    frame = shapely_box(0, 0, w, h)
    geom = prompt.geometry()
    if isinstance(prompt, Point):
        inside = frame.covers(geom)
    else:
        inside = frame.intersects(geom) and not frame.touches(geom)
    if not inside:
        raise PromptOutsideImage(
            f"{prompt.kind} at {_fmt(prompt.bounds)} lies entirely outside the {w}×{h} image: "
            f"use absolute pixel coordinates of this image (x in 0..{w}, y in 0..{h})"
        )
    _check_reach(prompt, image_size)
    if prompt.region is not None:
        return replace(prompt, region=fit_region(prompt.region, image_size))
    return prompt


def _check_reach(prompt: Prompt, image_size: tuple[int, int]) -> None:
    w, h = image_size
    side = max(w, h)
    far = FAR_OUTSIDE * side
    x1, y1, x2, y2 = prompt.bounds
    extra = 0.0
    if isinstance(prompt, Point):
        # The dot's radius is in model units: pixels = radius · s.
        extra = prompt.radius * side / MODEL_SIDE * max(prompt.aspect, 1 / prompt.aspect)
    elif isinstance(prompt, Arrow) and prompt.head is not None:
        extra = prompt.head
    if min(x1, y1) - extra < -far or x2 + extra > w + far or y2 + extra > h + far:
        raise PromptOutsideImage(
            f"{prompt.kind} at {_fmt(prompt.bounds)} reaches more than {FAR_OUTSIDE} image "
            f"sides outside the {w}×{h} image: use absolute pixel coordinates of this image "
            f"(x in 0..{w}, y in 0..{h})"
        )


def fit_region(region: Region, image_size: tuple[int, int]) -> Region:
    """Clip a region to the image; raises :class:`PromptOutsideImage` if nothing is left."""
    w, h = image_size
    frame = shapely_box(0, 0, w, h)
    if not frame.intersects(shapely_box(*region.box)) or frame.touches(shapely_box(*region.box)):
        raise PromptOutsideImage(
            f"region box {_fmt(region.box)} lies entirely outside the {w}×{h} image"
        )
    polygons = _clip_rings(region.polygons, frame) if region.polygons else None
    return Region(box=_clip_box(region.box, w, h), polygons=polygons)


def _clip_box(b: Box, w: int, h: int) -> Box:
    return (max(b[0], 0.0), max(b[1], 0.0), min(b[2], float(w)), min(b[3], float(h)))


def _clip_rings(rings: tuple[Ring, ...], frame: Polygon) -> tuple[Ring, ...]:
    out: list[Ring] = []
    for ring in rings:
        poly = Polygon(ring)
        if frame.covers(poly):
            out.append(ring)
            continue
        clipped = poly.intersection(frame)
        parts = clipped.geoms if hasattr(clipped, "geoms") else [clipped]
        for part in parts:
            if isinstance(part, Polygon) and part.area > 0:
                coords = tuple((float(x), float(y)) for x, y in part.exterior.coords[:-1])
                out.append(coords)
    if not out:
        raise PromptOutsideImage("every polygon lies outside the image")
    return tuple(out)
