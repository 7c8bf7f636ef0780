"""Box → mask assist: the object inside a box as a mask prompt (filled polygon rings).

The offline method is OpenCV's GrabCut initialised with the box (``GC_INIT_WITH_RECT``): a
colour model of the object (inside the box) against its surroundings (a margin around it),
refined by a graph cut. It runs on a crop around the box, downscaled so that its longer side is
at most ``work_side`` pixels: the cost then no longer grows with the photo (a 6000×4000 image
costs what a 600×400 one does). The result is traced (outer outlines of the largest connected
parts, no holes: a mask prompt is filled polygons) and simplified to a bounded number of
vertices, well below :data:`overlays.prompts.MAX_PROMPT_VERTICES`.

Any other segmenter (``vip_model.segment``: SAM, SAM 2) hands its boolean mask to
:func:`mask_to_rings` / :func:`mask_prompt`, so every method yields the same kind of prompt.
Pure: numpy, OpenCV and Pillow; no Qt, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image
from shapely.geometry import MultiPolygon, Polygon

from overlays.errors import OverlayError, PromptOutsideImage
from overlays.prompts import Box, Mask, Ring
from overlays.style import Style

#: Vertices of an assisted mask, all its rings together. A person edits these points by hand:
#: a few hundred outline an object closely and stay quick to draw, hit-test and edit.
MAX_ASSIST_VERTICES = 400
#: A box narrower or lower than this (pixels) has too few pixels for a colour model.
MIN_BOX_SIDE = 4


class AssistError(OverlayError):
    """Box → mask assist could not produce a mask; the message says what to do instead."""


class BoxOutsideImage(AssistError, PromptOutsideImage):
    """The box does not overlap the image (or too little of it does)."""


class EmptyMask(AssistError):
    """The method found no object in the box."""


@dataclass(frozen=True)
class GrabCutOptions:
    """How GrabCut runs. Defaults: measured in ``bench/bench_assist.py``."""

    #: Graph-cut rounds after the colour models are initialised from the box.
    iterations: int = 4
    #: Longer side of the working crop (box + margin), pixels; larger crops are downscaled.
    #: 0 = full resolution (the benchmark's speed baseline).
    work_side: int = 384
    #: Background context around the box, as a fraction of the box's longer side. A wide one
    #: teaches the background model more: the sample astronaut's black helmet against black
    #: comes out whole at 0.3 and more, as a thin rim at 0.25 and less.
    margin: float = 0.4
    #: GrabCut seeds its colour models with k-means from OpenCV's random generator: without a
    #: fixed seed the same box gives another mask after any other OpenCV call.
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.iterations <= 20:
            raise ValueError(f"iterations must be 1..20, got {self.iterations}")
        if self.work_side != 0 and self.work_side < 32:
            raise ValueError(
                f"work_side must be 0 (full resolution) or >= 32, got {self.work_side}"
            )
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin must be 0..1, got {self.margin}")


@dataclass(frozen=True)
class BoxMask:
    """A boolean mask over part of an image: ``mask[y, x]`` is image pixel
    ``(x0 + x, y0 + y)``. Methods return it for the box's neighbourhood only."""

    mask: np.ndarray
    x0: int = 0
    y0: int = 0

    def full(self, image_size: tuple[int, int]) -> np.ndarray:
        """The mask on the whole image of ``image_size`` = (W, H)."""
        w, h = image_size
        out = np.zeros((h, w), dtype=bool)
        mh, mw = self.mask.shape
        out[self.y0 : self.y0 + mh, self.x0 : self.x0 + mw] = self.mask[
            : h - self.y0, : w - self.x0
        ]
        return out


def check_box(box: Box, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` clipped to the image, in whole pixels (x1, y1, x2, y2), or a named error."""
    w, h = image_size
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise AssistError(f"the box must be x1,y1,x2,y2, got {box!r}") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        raise AssistError(
            f"the box {box!r} is empty or reversed: drag from one corner to the other"
        )
    cx1, cy1 = max(0, math.floor(x1)), max(0, math.floor(y1))
    cx2, cy2 = min(w, math.ceil(x2)), min(h, math.ceil(y2))
    if cx2 <= cx1 or cy2 <= cy1:
        raise BoxOutsideImage(
            f"the box {_fmt(box)} lies outside the {w}×{h} image: draw it on the object"
        )
    if cx2 - cx1 < MIN_BOX_SIDE or cy2 - cy1 < MIN_BOX_SIDE:
        raise AssistError(
            f"the box {_fmt(box)} covers less than {MIN_BOX_SIDE}×{MIN_BOX_SIDE} pixels of the "
            "image: draw a larger box around the object"
        )
    return (cx1, cy1, cx2, cy2)


def as_rgb_array(image: Image.Image | np.ndarray, area: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of ``area`` (x1, y1, x2, y2) as an H×W×3 uint8 RGB array (only that area is
    converted: a 24-megapixel photo is not copied for a small box)."""
    x1, y1, x2, y2 = area
    if isinstance(image, Image.Image):
        crop = image.crop(area)
        return np.asarray(crop if crop.mode == "RGB" else crop.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise AssistError(
            f"the image must be RGB uint8 (H×W×3), got an array of shape {array.shape} "
            f"and type {array.dtype}"
        )
    return np.ascontiguousarray(array[y1:y2, x1:x2, :3])


def image_size_of(image: Image.Image | np.ndarray) -> tuple[int, int]:
    """(W, H) of a PIL image or an H×W(×C) array."""
    if isinstance(image, Image.Image):
        return image.size
    return (int(image.shape[1]), int(image.shape[0]))


def grabcut(
    image: Image.Image | np.ndarray, box: Box, options: GrabCutOptions | None = None
) -> BoxMask:
    """The object inside ``box`` by GrabCut, as a :class:`BoxMask` at full resolution.

    Raises :class:`BoxOutsideImage`, :class:`AssistError` (a box too small, or GrabCut could
    not separate object from background), :class:`EmptyMask` (nothing found).
    """
    opts = options or GrabCutOptions()
    size = image_size_of(image)
    bx1, by1, bx2, by2 = check_box(box, size)
    pad = round(opts.margin * max(bx2 - bx1, by2 - by1))
    w, h = size
    crop = (max(0, bx1 - pad), max(0, by1 - pad), min(w, bx2 + pad), min(h, by2 + pad))
    pixels = as_rgb_array(image, crop)
    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
    scale = 1.0
    if opts.work_side and max(cw, ch) > opts.work_side:
        scale = opts.work_side / max(cw, ch)
        small = (max(1, round(cw * scale)), max(1, round(ch * scale)))
        pixels = cv2.resize(pixels, small, interpolation=cv2.INTER_AREA)
    sh, sw = pixels.shape[:2]
    rx1 = min(max(0, math.floor((bx1 - crop[0]) * scale)), sw - 1)
    ry1 = min(max(0, math.floor((by1 - crop[1]) * scale)), sh - 1)
    rx2 = min(sw, max(rx1 + 1, math.ceil((bx2 - crop[0]) * scale)))
    ry2 = min(sh, max(ry1 + 1, math.ceil((by2 - crop[1]) * scale)))
    if rx1 == 0 and ry1 == 0 and rx2 == sw and ry2 == sh:
        # No pixel outside the box: GrabCut has no background to learn from. Take a 1-pixel
        # frame of the box as background (the object rarely touches all four image borders).
        rx1, ry1, rx2, ry2 = 1, 1, sw - 1, sh - 1
    if rx2 - rx1 < 2 or ry2 - ry1 < 2:
        raise AssistError(f"the box {_fmt(box)} is too thin for GrabCut: draw a larger box")
    labels = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    cv2.setRNGSeed(opts.seed)  # OpenCV's generator is per thread: this thread's only
    try:
        cv2.grabCut(
            bgr, labels, (rx1, ry1, rx2 - rx1, ry2 - ry1), bgd, fgd, opts.iterations,
            cv2.GC_INIT_WITH_RECT,
        )  # fmt: skip
    except cv2.error as exc:  # e.g. a flat area: the colour models cannot be fitted
        raise AssistError(
            f"GrabCut could not separate an object in the box {_fmt(box)} "
            f"({_cv_reason(exc)}): draw the mask by hand or try another method"
        ) from None
    found = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if scale != 1.0:
        # Upscale the working mask smoothly (linear, then threshold) rather than blockwise.
        up = cv2.resize(found.astype(np.uint8) * 255, (cw, ch), interpolation=cv2.INTER_LINEAR)
        found = up >= 128
    # The object is inside the box by definition: nothing of the margin belongs to it.
    found = found[by1 - crop[1] : by2 - crop[1], bx1 - crop[0] : bx2 - crop[0]]
    if not found.any():
        raise EmptyMask(
            f"GrabCut found no object in the box {_fmt(box)}: draw a box that fits the object "
            "more closely, or draw the mask by hand"
        )
    return BoxMask(np.ascontiguousarray(found), bx1, by1)


def mask_to_rings(
    mask: BoxMask,
    *,
    max_vertices: int = MAX_ASSIST_VERTICES,
    max_parts: int = 4,
    min_part: float = 0.05,
) -> list[Ring]:
    """Outer outlines of the largest connected parts of ``mask``, as simple polygons in image
    pixels, simplified so that all rings together have at most ``max_vertices`` points.

    Parts smaller than ``min_part`` of the largest one are dropped (specks), at most
    ``max_parts`` are kept; holes are filled (a mask prompt is filled polygons).
    Raises :class:`EmptyMask` when nothing is left.
    """
    binary = np.ascontiguousarray(mask.mask, dtype=np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons: list[Polygon] = []
    for c in contours:
        if len(c) < 3:
            continue
        # Pixel centres → pixel area: a 1-pixel-wide part still has an area.
        pts = c[:, 0, :].astype(np.float64) + np.array([mask.x0 + 0.5, mask.y0 + 0.5])
        poly = _valid(Polygon(pts))
        if poly is not None:
            polygons.append(poly)
    polygons.sort(key=lambda p: p.area, reverse=True)
    if not polygons:
        raise EmptyMask("the mask has no part large enough to outline: draw a larger box")
    largest = polygons[0].area
    kept = [p for p in polygons[:max_parts] if p.area >= min_part * largest]
    tolerance = 0.75
    while True:
        simplified = (_ring_of(p.simplify(tolerance, preserve_topology=True)) for p in kept)
        rings = [r for r in simplified if r is not None]
        if rings and sum(len(r) for r in rings) <= max_vertices:
            return rings
        if not rings:
            raise EmptyMask("the mask vanished when simplified: draw a larger box")
        tolerance *= 1.5


def mask_prompt(
    mask: BoxMask,
    *,
    style: Style | None = None,
    label: str | None = None,
    max_vertices: int = MAX_ASSIST_VERTICES,
) -> Mask:
    """A :class:`~overlays.prompts.Mask` of ``mask``'s outlines, in ``style``."""
    rings = mask_to_rings(mask, max_vertices=max_vertices)
    return Mask(polygons=tuple(rings), style=style or Style(), label=label)


def box_to_mask(
    image: Image.Image | np.ndarray,
    box: Box,
    *,
    style: Style | None = None,
    label: str | None = None,
    options: GrabCutOptions | None = None,
) -> Mask:
    """The object inside ``box`` as a mask prompt, by GrabCut (offline, no model)."""
    return mask_prompt(grabcut(image, box, options), style=style, label=label)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _valid(poly: Polygon) -> Polygon | None:
    if poly.is_valid and poly.area > 0:
        return poly
    fixed: Any = poly.buffer(0)  # a contour that touches itself at a pixel corner
    if isinstance(fixed, MultiPolygon):
        fixed = max(fixed.geoms, key=lambda g: g.area)
    return fixed if isinstance(fixed, Polygon) and fixed.area > 0 else None


def _ring_of(geom: Any) -> Ring | None:
    if isinstance(geom, MultiPolygon):
        geom = max(geom.geoms, key=lambda g: g.area)
    if not isinstance(geom, Polygon) or geom.is_empty or geom.area <= 0 or not geom.is_valid:
        return None
    coords = list(geom.exterior.coords)[:-1]
    if len(coords) < 3:
        return None
    return tuple((float(x), float(y)) for x, y in coords)


def _cv_reason(exc: cv2.error) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else "OpenCV error"


def _fmt(box: Any) -> str:
    try:
        return ",".join(f"{float(v):g}" for v in box)
    except (TypeError, ValueError):
        return repr(box)
