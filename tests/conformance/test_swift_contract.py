"""`swift` exports as ms-swift reads them (modelscope/ms-swift, rules mirrored from its source).

From ``swift/dataset/preprocessor/core.py`` (``_check_objects``: ``objects`` keeps ``ref``,
``bbox``, ``bbox_type``, ``image_id``; each box has 2 or 4 numbers) and
``swift/template/base.py`` (``<image>`` tags take ``images`` in order; each ``<ref-object>``
takes the next ``ref`` and each ``<bbox>`` the next ``bbox``, across all messages;
``normalize_bbox`` reads ``bbox_type`` "real" as pixels of ``images[image_id]``). Tags beyond
the objects would stay in the text as literal tags.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from dg_fixtures import Sample
from PIL import Image

from data_gen.base import ExportOptions
from data_gen.export import export

TAGS = re.compile(r"<image>|<ref-object>|<bbox>")


def swift_expand(row: dict[str, Any], images: list[Image.Image]) -> list[str]:
    """The messages with every tag replaced as ms-swift's template does (boxes in pixels)."""
    objects = row.get("objects") or {}
    assert list(objects) == [k for k in ("ref", "bbox", "bbox_type", "image_id") if k in objects]
    refs, boxes = objects.get("ref", []), objects.get("bbox", [])
    assert len(refs) == len(boxes) == len(objects.get("image_id", boxes))
    assert objects.get("bbox_type", "real") == "real"
    for box, image_id in zip(boxes, objects.get("image_id", []), strict=True):
        assert len(box) in (2, 4) and box[0] <= box[2] and box[1] <= box[3]
        w, h = images[image_id].size
        assert min(box) >= 0 and box[2] <= w and box[3] <= h
    counters = {"<image>": 0, "<ref-object>": 0, "<bbox>": 0}
    limits = {"<image>": len(images), "<ref-object>": len(refs), "<bbox>": len(boxes)}

    def fill(match: re.Match[str]) -> str:
        tag = match.group(0)
        index = counters[tag]
        assert index < limits[tag], f"{tag} #{index + 1} has nothing to take"
        counters[tag] += 1
        if tag == "<ref-object>":
            return str(refs[index])
        if tag == "<bbox>":
            x1, y1, x2, y2 = (round(v) for v in boxes[index])
            return f"[({x1},{y1}),({x2},{y2})]"
        return "[IMG]"

    texts = [TAGS.sub(fill, m["content"]) for m in row["messages"]]
    assert counters == limits, "every image, ref and box is used exactly once"
    return texts


def test_swift_rows_as_ms_swift_reads_them(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "swift"
    summary = export(sample.log, ExportOptions(format="swift", out=out, workers=1, augment=1))
    assert (out / "train.jsonl").is_file() and "train.jsonl" in summary.files
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == sum(summary.records.values()) == 9
    grounded = 0
    for row in rows:
        assert set(row) <= {"messages", "images", "objects"}
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        assert all(m["content"] for m in row["messages"] if m["role"] == "assistant")
        assert row["messages"][0]["content"].startswith("<image>")
        images = [Image.open(out / p) for p in row["images"]]
        texts = swift_expand(row, images)
        grounded += "objects" in row
        assert not any(TAGS.search(t) for t in texts)
    assert grounded == 8  # every record with a region; the whole-image one has no objects
    cat = next(r for r in rows if "looking at" in r["messages"][0]["content"])
    assert (
        cat["messages"][0]["content"]
        == "<image>Is <ref-object><bbox> looking at <ref-object><bbox>?"
    )
    assert cat["objects"]["ref"] == [
        "the cat within the red rectangle",
        "the object pointed to by the lime arrow",
    ]
    assert cat["objects"]["bbox"][0] == [100.0, 50.0, 451.0, 300.0]  # clipped to the image


def test_swift_jsonl_loads_with_datasets(sample: Sample, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "swift"
    export(sample.log, ExportOptions(format="swift", out=out, workers=1))
    ds = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    assert ds.num_rows == 5 and {"messages", "images", "objects"} <= set(ds.column_names)
    grounded = [r for r in ds if r["objects"] is not None]
    assert all(len(r["objects"]["ref"]) == len(r["objects"]["bbox"]) for r in grounded)
