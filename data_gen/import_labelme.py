"""LabelMe files (one JSON per image, or a folder of them): rectangles, polygons, circles;
polygons sharing a ``group_id`` and label are one region.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import overlays as ov
from data_gen.errors import ImportFailed
from data_gen.import_plan import (
    ImageFiles,
    ImportPlan,
    InvalidEntry,
    PlannedRegion,
    checked_region,
    flat_rings,
    numbers,
)


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
    if not isinstance(doc.get("imagePath"), str):
        plan.invalid.append((path.name, "no 'imagePath'"))
        return
    folder = images_dir if images_dir is not None else path.parent
    image_path = folder / (Path(doc["imagePath"]).name if images_dir else doc["imagePath"])
    try:
        image = ImageFiles(plan).get(image_path, (doc.get("imageWidth"), doc.get("imageHeight")))
    except InvalidEntry as exc:
        plan.invalid.append((path.name, str(exc)))
        return
    groups: dict[tuple[str, Any], list[tuple[ov.Pt, ...]]] = {}
    for i, shape in enumerate(doc["shapes"]):
        where = f"{path.name} shape {i}"
        notes: list[str] = []
        try:
            if not isinstance(shape, dict):
                raise InvalidEntry("not a JSON object")
            kind = shape.get("shape_type") or "polygon"
            label = str(shape.get("label") or "").strip() or None
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
            elif kind == "polygon":
                rings = flat_rings([[c for p in points for c in p]], "shape")
                group = shape.get("group_id")
                if group is not None and label is not None:
                    # LabelMe's way of drawing one object in several parts.
                    groups.setdefault((label, group), []).extend(rings)
                    continue
                region = checked_region(None, rings, image.size, notes)
            else:
                raise InvalidEntry(
                    f"shape type {kind!r} has no area: only rectangle, polygon, circle"
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


def labelme_files(path: Path) -> list[Path]:
    """The LabelMe files to read: the file itself, or the folder's ``*.json``."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ImportFailed(f"{path}: no LabelMe .json files in this folder")
        return files
    return [path]
