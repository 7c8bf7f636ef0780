"""COCO instances files: ``images``, ``annotations`` (``bbox`` as x, y, width, height;
polygon ``segmentation``), ``categories`` for class names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_gen.errors import ImportFailed
from data_gen.import_plan import (
    ImageFiles,
    ImportPlan,
    InvalidEntry,
    PlannedRegion,
    checked_region,
    flat_rings,
    fmt,
    load_json,
    numbers,
    ref_id,
)


def plan_coco(plan: ImportPlan, images_dir: Path) -> None:
    """Add a COCO file's annotations to ``plan``; images are found in ``images_dir``."""
    doc = load_json(plan.file)
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise ImportFailed(f"{plan.file}: not a COCO file (no 'annotations' list)")
    if not isinstance(doc.get("images"), list):
        raise ImportFailed(f"{plan.file}: not a COCO file (no 'images' list)")
    categories: dict[int | str, str] = {}
    unnamed: set[int | str] = set()
    for i, cat in enumerate(doc.get("categories") or []):
        try:
            if not isinstance(cat, dict):
                raise InvalidEntry("not a JSON object")
            cid = ref_id(cat.get("id"), "'id'")
        except InvalidEntry as exc:
            plan.invalid.append((f"category entry {i}", str(exc)))
            continue
        name = cat.get("name")
        if isinstance(name, str) and name.strip():
            categories[cid] = name.strip()
        else:
            unnamed.add(cid)
    entries: dict[int | str, dict[str, Any]] = {}
    for i, entry in enumerate(doc["images"]):
        try:
            if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
                raise InvalidEntry("needs 'id' and 'file_name'")
            if not isinstance(entry["file_name"], str) or not entry["file_name"]:
                raise InvalidEntry(f"'file_name' must be a path, got {entry['file_name']!r}")
            entries[ref_id(entry["id"], "'id'")] = entry
        except InvalidEntry as exc:
            plan.invalid.append((f"image entry {i}", str(exc)))
    files = ImageFiles(plan, images_dir)
    for i, ann in enumerate(doc["annotations"]):
        where = f"annotation {ann.get('id', i) if isinstance(ann, dict) else i}"
        notes: list[str] = []
        try:
            if not isinstance(ann, dict):
                raise InvalidEntry("not a JSON object")
            if ann.get("iscrowd"):
                raise InvalidEntry("crowd annotation (iscrowd=1): a group, not one region")
            entry = entries.get(ref_id(ann.get("image_id"), "image_id"))
            if entry is None:
                raise InvalidEntry(f"unknown image_id {ann.get('image_id')!r}")
            image = files.get(
                images_dir / entry["file_name"], (entry.get("width"), entry.get("height"))
            )
            x, y, w, h = numbers(ann.get("bbox"), 4, "bbox [x, y, width, height]")
            if w <= 0 or h <= 0:
                raise InvalidEntry(f"bbox {fmt((x, y, w, h))} has no area")
            rings = None
            segmentation = ann.get("segmentation")
            if isinstance(segmentation, dict):
                notes.append("RLE mask: only the box was imported")
            elif segmentation:
                if isinstance(segmentation, list) and all(
                    isinstance(v, int | float) for v in segmentation
                ):
                    segmentation = [segmentation]  # one flat polygon instead of a list of them
                rings = flat_rings(segmentation, "segmentation")
            label = None
            if ann.get("category_id") is not None:
                category = ref_id(ann["category_id"], "category_id")
                if category in unnamed:
                    raise InvalidEntry(
                        f"category_id {category!r} has no name in 'categories': name it there"
                    )
                label = categories.get(category)
                if label is None:
                    raise InvalidEntry(
                        f"unknown category_id {category!r}: it is not in 'categories'"
                    )
            region = checked_region((x, y, x + w, y + h), rings, image.size, notes)
        except InvalidEntry as exc:
            plan.invalid.append((where, str(exc)))
            continue
        image.regions.append(PlannedRegion(region, label, str(ann.get("id", i))))
        plan.notes += [(where, n) for n in notes]
