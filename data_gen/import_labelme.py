"""LabelMe files (one JSON per image, or a folder of them): rectangles, polygons, circles and
masks (bitmaps); polygons sharing a ``group_id`` and label are one region. The image may be
embedded in the file (``imageData``); shapes labelled ``__ignore__`` are left out.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

import overlays as ov
from data_gen.errors import ImportFailed
from data_gen.import_plan import (
    ImageFiles,
    ImportPlan,
    InvalidEntry,
    PlannedImage,
    PlannedRegion,
    checked_region,
    flat_rings,
    numbers,
    ref_id,
)

#: LabelMe's label for what should not become a class (labelme2coco leaves it out).
IGNORE = "__ignore__"


def _circle(points: list[list[float]]) -> tuple[float, float, float, float]:
    (cx, cy), (px, py) = points
    r = math.hypot(px - cx, py - cy)
    if r <= 0:
        raise InvalidEntry("circle has zero radius")
    return (cx - r, cy - r, cx + r, cy + r)


def plan_labelme_file(plan: ImportPlan, path: Path, images_dir: Path | None) -> None:
    """Add one LabelMe file's shapes to ``plan``."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        plan.invalid.append((path.name, f"not a readable JSON file ({exc})"))
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        plan.invalid.append((path.name, "not a LabelMe file (no 'shapes' list)"))
        return
    try:
        image = _image(plan, path, doc, images_dir)
    except InvalidEntry as exc:
        plan.invalid.append((path.name, str(exc)))
        return
    groups: dict[tuple[str, int | str], list[tuple[ov.Pt, ...]]] = {}
    for i, shape in enumerate(doc["shapes"]):
        where = f"{path.name} shape {i}"
        notes: list[str] = []
        try:
            if not isinstance(shape, dict):
                raise InvalidEntry("not a JSON object")
            kind = shape.get("shape_type") or "polygon"
            label = shape.get("label")
            if label is not None and not isinstance(label, str):
                raise InvalidEntry(f"'label' must be text, got {label!r}")
            label = (label or "").strip() or None
            if label == IGNORE:
                plan.ignored += 1
                continue
            raw = shape.get("points")
            if not isinstance(raw, list):
                raise InvalidEntry("'points' must be a list of [x, y]")
            points = [numbers(p, 2, "point") for p in raw]
            if kind == "rectangle":
                if len(points) != 2:
                    raise InvalidEntry(f"a rectangle needs 2 points, got {len(points)}")
                (x1, y1), (x2, y2) = points
                box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
                region = checked_region(box, None, image.size, notes)
            elif kind == "circle":
                if len(points) != 2:
                    raise InvalidEntry("a circle needs its centre and a point on it")
                region = checked_region(_circle(points), None, image.size, notes)
            elif kind == "mask":
                box, rings = mask_region(shape.get("mask"), points, notes)
                region = checked_region(box, rings, image.size, notes)
            elif kind == "polygon":
                rings = flat_rings([[c for p in points for c in p]], "shape")
                group = shape.get("group_id")
                if group is not None and label is not None:
                    # LabelMe's way of drawing one object in several parts.
                    groups.setdefault((label, ref_id(group, "group_id")), []).extend(rings)
                    continue
                region = checked_region(None, rings, image.size, notes)
            else:
                raise InvalidEntry(
                    f"shape type {kind!r} has no area: only rectangle, polygon, circle, mask"
                )
        except InvalidEntry as exc:
            plan.invalid.append((where, str(exc)))
            continue
        image.regions.append(PlannedRegion(region, label, f"{path.name}#{i}"))
        plan.notes += [(where, n) for n in notes]
    for (label, group), rings in groups.items():
        where = f"{path.name} group {group} ({label})"
        notes = []
        try:
            region = checked_region(None, rings, image.size, notes)
        except InvalidEntry as exc:
            plan.invalid.append((where, str(exc)))
            continue
        image.regions.append(PlannedRegion(region, label, f"{path.name}#group{group}"))
        plan.notes += [(where, n) for n in notes]


def _image(
    plan: ImportPlan, path: Path, doc: dict[str, Any], images_dir: Path | None
) -> PlannedImage:
    """The image a LabelMe file annotates: the one embedded in ``imageData`` when there is
    one (as LabelMe itself reads it), else the file at ``imagePath``."""
    declared = (doc.get("imageWidth"), doc.get("imageHeight"))
    written = doc.get("imagePath")
    embedded = doc.get("imageData")
    if written is not None and not isinstance(written, str):
        raise InvalidEntry(f"'imagePath' must be a path, got {written!r}")
    if embedded is not None and not isinstance(embedded, str):
        raise InvalidEntry("'imageData' must be base64 text")
    folder = images_dir if images_dir is not None else path.parent
    files = ImageFiles(plan, folder)
    target = folder / (Path(written).name if images_dir else written) if written else None
    if not embedded:
        if target is None:
            raise InvalidEntry("no 'imagePath' and no 'imageData'")
        return files.get(target, declared)
    try:
        data = base64.b64decode(embedded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEntry("'imageData' is not valid base64") from None
    # The same picture on disk: refer to it rather than keep a copy of it.
    same_size = target is not None and target.is_file() and target.stat().st_size == len(data)
    if target is not None and same_size and target.read_bytes() == data:
        return files.get(target, declared)
    name = Path(written).name if written else f"{path.stem}.png"
    return files.embedded(data, name, declared)


def mask_region(
    encoded: Any, points: list[list[float]], notes: list[str]
) -> tuple[tuple[float, float, float, float], list[tuple[ov.Pt, ...]] | None]:
    """A LabelMe ``mask`` shape: a base64 PNG bitmap whose top-left pixel lies at the first
    point. Returns the box of its pixels and its outlines (``cv2.findContours``)."""
    if not isinstance(encoded, str) or not encoded:
        raise InvalidEntry("a mask shape needs its bitmap in 'mask' (base64 PNG)")
    if len(points) != 2:
        raise InvalidEntry(f"a mask needs 2 points (its box), got {len(points)}")
    try:
        with Image.open(io.BytesIO(base64.b64decode(encoded, validate=True))) as im:
            if im.width * im.height > ov.MAX_PIXELS:
                raise InvalidEntry(f"mask of {im.width}×{im.height} pixels is over the limit")
            bitmap = np.asarray(im.convert("L")) > 0
    except (binascii.Error, ValueError, OSError, SyntaxError):
        raise InvalidEntry("'mask' is not a base64 PNG image") from None
    rows, cols = np.nonzero(bitmap)
    if not len(rows):
        raise InvalidEntry("the mask is empty: no pixel set")
    x0 = math.floor(min(points[0][0], points[1][0]))
    y0 = math.floor(min(points[0][1], points[1][1]))
    box = (
        float(x0 + cols.min()),
        float(y0 + rows.min()),
        float(x0 + cols.max() + 1),
        float(y0 + rows.max() + 1),
    )
    contours, _ = cv2.findContours(
        bitmap.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    # Outlines through the pixel centres; a part one pixel thin has no area and is left out.
    rings = [
        tuple((x0 + float(x) + 0.5, y0 + float(y) + 0.5) for x, y in c.reshape(-1, 2))
        for c in contours
        if len(c) >= 3 and cv2.contourArea(c) > 0
    ]
    if not rings:
        notes.append("mask too thin for an outline: its box was imported")
    return box, rings or None


def labelme_files(path: Path) -> list[Path]:
    """The LabelMe files to read: the file itself, or the folder's ``*.json``."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ImportFailed(f"{path}: no LabelMe .json files in this folder")
        return files
    return [path]
