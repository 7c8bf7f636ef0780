"""Importing COCO, LabelMe and ViP-LLaVA files into a real log; invalid entries; one transaction;
batch queries for the imported regions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dg_fixtures import copy_photos

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.errors import ImportFailed, InvalidSelection
from data_gen.export import export
from data_gen.importers import commit_plan, import_file, plan_import
from data_gen.qalog.log import QALog
from data_gen.queries import region_queries


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    return copy_photos(tmp_path / "photos")


@pytest.fixture
def log(tmp_path: Path) -> Any:
    with QALog.open(tmp_path / "log.sqlite") as opened:
        yield opened


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def _coco(photos: dict[str, Path]) -> dict[str, Any]:
    return {
        "images": [
            {"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400},
            {"id": 2, "file_name": "chelsea.jpg", "width": 451, "height": 300},
            {"id": 3, "file_name": "rocket.jpg", "width": 100, "height": 100},  # wrong size
            {"id": 4, "file_name": "missing.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "cat"}],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "bbox": [180, 20, 240, 210],
                "segmentation": [[180, 20, 420, 20, 420, 230, 180, 230]],
            },
            {
                "id": 11,
                "image_id": 2,
                "category_id": 2,
                "bbox": [100, 50, 600, 300],
                "segmentation": {"counts": [0, 5], "size": [300, 451]},
            },  # RLE; box reaches out
            {
                "id": 12,
                "image_id": 1,
                "category_id": 1,
                "bbox": [10, 10, 50, 50],
                "segmentation": [[10, 10, 60, 60, 60, 10, 10, 60]],
            },  # a bow tie: repaired
            {"id": 13, "image_id": 1, "category_id": 1, "bbox": [700, 500, 10, 10]},  # outside
            {"id": 14, "image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 5]},  # no area
            {"id": 15, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]},  # unknown image
            {"id": 16, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},  # unknown class
            {"id": 17, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 1},
            {"id": 18, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5]},  # size mismatch
            {"id": 19, "image_id": 4, "category_id": 1, "bbox": [1, 1, 5, 5]},  # no file
            {"id": 20, "image_id": 1, "category_id": 1, "bbox": "1,1,5,5"},
        ],
    }


def test_coco(log: QALog, photos: dict[str, Path]) -> None:
    path = _write(photos["coffee"].parent / "instances.json", _coco(photos))
    report = import_file(log, "coco", path)
    assert (report.regions, report.images, report.sessions, report.turns) == (3, 2, 2, 0)
    reasons = dict(report.invalid)
    assert set(reasons) == {f"annotation {i}" for i in range(13, 21)}
    assert "outside" in reasons["annotation 13"] and "no area" in reasons["annotation 14"]
    assert "unknown image_id" in reasons["annotation 15"]
    assert "unknown category_id" in reasons["annotation 16"]
    assert "crowd" in reasons["annotation 17"]
    assert "100×100" in reasons["annotation 18"]
    assert "no such file" in reasons["annotation 19"]
    notes = {(where, note.split(" ")[0]) for where, note in report.notes}
    assert {
        ("annotation 11", "RLE"),
        ("annotation 11", "box"),
        ("annotation 12", "self-intersecting"),
    } <= notes
    regions = {r.external_id: r for r in log.iter_regions(import_id=report.import_id)}
    assert set(regions) == {"10", "11", "12"}
    cup = regions["10"]
    assert cup.label == "cup" and cup.region.box == (180, 20, 420, 230)
    assert cup.region.polygons == (((180, 20), (420, 20), (420, 230), (180, 230)),)
    assert regions["11"].label == "cat" and regions["11"].region.box == (100, 50, 451, 300)
    assert regions["11"].region.polygons is None
    assert regions["12"].region.polygons is not None
    sources = log.conn.execute("SELECT DISTINCT source FROM sessions").fetchall()
    assert sources == [("import",)] and log.count() == 0  # regions, no turns without answers


def test_same_file_twice_is_refused_unless_again(log: QALog, photos: dict[str, Path]) -> None:
    path = _write(photos["coffee"].parent / "instances.json", _coco(photos))
    import_file(log, "coco", path)
    with pytest.raises(ImportFailed, match=r"already imported.*--again"):
        import_file(log, "coco", path)
    assert import_file(log, "coco", path, again=True).regions == 3
    assert len(list(log.iter_regions())) == 6


def test_strict_and_dry_run_write_nothing(log: QALog, photos: dict[str, Path]) -> None:
    path = _write(photos["coffee"].parent / "instances.json", _coco(photos))
    with pytest.raises(ImportFailed, match="nothing was imported: 8 invalid"):
        import_file(log, "coco", path, strict=True)
    report = import_file(log, "coco", path, dry_run=True)
    assert report.dry_run and report.regions == 3 and report.import_id is None
    tables = ("images", "sessions", "regions", "imports")
    assert [log.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables] == [
        0,
        0,
        0,
        0,
    ]


def test_a_failure_while_writing_rolls_everything_back(log: QALog, photos: dict[str, Path]) -> None:
    entries = [
        {
            "id": "a",
            "image": "coffee.jpg",
            "bboxes": [[180, 20, 420, 230]],
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is <bbox0>?"},
                {"from": "gpt", "value": "A cup."},
            ],
        },
    ]
    plan = plan_import("vip-llava", _write(photos["coffee"].parent / "v.json", entries))
    (image,) = plan.images.values()
    turns = image.conversations[0].turns
    # The log refuses this turn (empty question) after the image, session and regions are in.
    turns.append(type(turns[0])(" ", "x", ()))
    with pytest.raises(ImportFailed, match=r"nothing was imported.*non-empty question"):
        commit_plan(log, plan)
    tables = ("images", "sessions", "regions", "imports", "turns")
    assert all(log.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] == 0 for t in tables)


def test_labelme_folder(log: QALog, photos: dict[str, Path]) -> None:
    folder = photos["coffee"].parent
    _write(
        folder / "coffee.json",
        {
            "version": "5.4.1",
            "imagePath": "coffee.jpg",
            "imageData": None,
            "imageWidth": 600,
            "imageHeight": 400,
            "shapes": [
                {"label": "cup", "shape_type": "rectangle", "points": [[420, 230], [180, 20]]},
                {
                    "label": "saucer",
                    "shape_type": "polygon",
                    "points": [[150, 250], [450, 250], [460, 300], [140, 300]],
                },
                {"label": "spoon", "shape_type": "circle", "points": [[500, 300], [520, 300]]},
                {"label": "edge", "shape_type": "line", "points": [[0, 0], [10, 10]]},
                {
                    "label": "bean",
                    "shape_type": "polygon",
                    "group_id": 1,
                    "points": [[10, 10], [30, 10], [30, 30]],
                },
                {
                    "label": "bean",
                    "shape_type": "polygon",
                    "group_id": 1,
                    "points": [[50, 50], [70, 50], [70, 70]],
                },
                {"label": "cup", "shape_type": "rectangle", "points": [[1, 1]]},
            ],
        },
    )
    _write(folder / "other.json", {"imagePath": "nope.jpg", "shapes": []})
    report = import_file(log, "labelme", folder)
    assert report.regions == 4 and report.images == 1
    reasons = dict(report.invalid)
    assert "no area" in reasons["coffee.json shape 3"]
    assert "2 points" in reasons["coffee.json shape 6"]
    assert "no such file" in reasons["other.json"]
    regions = {r.label: r.region for r in log.iter_regions()}
    assert regions["cup"].box == (180, 20, 420, 230)
    assert regions["spoon"].box == (480, 280, 520, 320)
    assert regions["bean"].box == (10, 10, 70, 70) and len(regions["bean"].polygons or ()) == 2


def test_vip_llava_bbox_and_bboxes_and_round_trip(
    log: QALog, photos: dict[str, Path], tmp_path: Path
) -> None:
    entries = [
        {
            "id": "vg_rel-gpt4v-1",
            "image": "chelsea.jpg",
            "bboxes": [[100, 50, 300, 250], [320, 60, 440, 200]],
            "segmentations": [None, [320, 60, 440, 60, 440, 200]],
            "conversations": [
                {"from": "human", "value": "<image>\nIs the cat <bbox0> near the object <bbox1>?"},
                {"from": "gpt", "value": "Yes, it is next to it."},
                {"from": "human", "value": "What colour is the object <bbox1>?"},
                {"from": "gpt", "value": "Grey."},
            ],
        },
        {
            "id": "doc-example",
            "image": "coffee.jpg",
            "bbox": [180, 20, 420, 230],
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is in <bbox>?"},
                {"from": "gpt", "value": "A cup of coffee."},
            ],
        },
        {
            "id": "bad-index",
            "image": "coffee.jpg",
            "bboxes": [[1, 1, 9, 9]],
            "conversations": [
                {"from": "human", "value": "<bbox3>?"},
                {"from": "gpt", "value": "x"},
            ],
        },
        {
            "id": "odd",
            "image": "coffee.jpg",
            "bboxes": [],
            "conversations": [{"from": "human", "value": "Hello?"}],
        },
    ]
    path = _write(photos["coffee"].parent / "vip.json", entries)
    report = import_file(log, "vip-llava", path)
    assert (report.turns, report.regions, report.sessions) == (3, 3, 2)
    reasons = dict(report.invalid)
    assert "<bbox3>" in reasons["entry 2 (id bad-index)"]
    assert "alternate" in reasons["entry 3 (id odd)"]
    turns = log.turns()
    assert turns[0].question == (
        "Is the cat within the red rectangle near the object with the lime triangle?".replace(
            "with the lime triangle", "within the lime rectangle"
        )
    )
    assert [turns[0].question[r.start : r.end] for r in turns[0].question_refs] == [
        "the red rectangle",
        "the lime rectangle",
    ]
    # faithful to what the trainer would have made of "in <bbox>"; exported back unchanged
    assert turns[2].question == "What is in within the red rectangle?"
    assert {t.source for t in turns} == {"import"} and turns[0].model == "import:vip-llava"
    assert turns[0].prompts[1].marked_region().polygons is not None
    # exported again as vip-llava, the conversations come back as they were
    export(log, ExportOptions(format="vip-llava", out=tmp_path / "again"))
    back = json.loads((tmp_path / "again/train.json").read_text())
    by_image = {Path(r["image"]).name.split("-")[0]: r for r in back}
    chelsea = by_image["chelsea"]
    assert [t["value"] for t in chelsea["conversations"]] == [
        t["value"] for t in entries[0]["conversations"]
    ]
    assert chelsea["bboxes"] == entries[0]["bboxes"]
    assert chelsea["segmentations"] == [None, [[320, 60, 440, 60, 440, 200]]]
    coffee = by_image["coffee"]
    assert coffee["conversations"][0]["value"] == "What is in <bbox>?"  # refcocog-gpt4v
    assert coffee["bboxes"] == [[180, 20, 420, 230]]


def test_region_queries_for_ask_batch(log: QALog, photos: dict[str, Path]) -> None:
    path = _write(photos["coffee"].parent / "instances.json", _coco(photos))
    report = import_file(log, "coco", path)
    queries = list(region_queries(log, import_id=report.import_id, question="What is <region>?"))
    assert len(queries) == 3
    for query in queries:
        assert set(query) == {"id", "image", "question", "prompts"}
        assert Path(query["image"]).is_file()
        prompts = ov.from_document(query["prompts"])
        assert [p.kind for p in prompts] == ["rectangle"]
        # what `ask --batch` does with it
        question, refs = ov.compose_question(query["question"], prompts)
        assert question.startswith("What is the ") and len(refs) == 1
    first = ov.compose_question(queries[0]["question"], ov.from_document(queries[0]["prompts"]))
    assert first[0] == "What is the cup within the red rectangle?"
    again = list(region_queries(log, import_id=report.import_id, question="What is <region>?"))
    assert [q["id"] for q in again] == [q["id"] for q in queries]  # stable: resumable batches
    other = list(region_queries(log, question="Describe <region>.", shape="arrow"))
    assert not {q["id"] for q in other} & {q["id"] for q in queries}
    assert ov.from_document(other[0]["prompts"])[0].kind == "arrow"
    with pytest.raises(InvalidSelection, match="<region>"):
        list(region_queries(log, question="What is it?"))


def test_not_the_announced_format(log: QALog, tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", [{"image": "a.jpg"}])
    with pytest.raises(ImportFailed, match="not a COCO file"):
        import_file(log, "coco", path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ImportFailed, match="not valid JSON"):
        import_file(log, "vip-llava", tmp_path / "broken.json")
