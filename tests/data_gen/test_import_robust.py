"""Imports verify every image, never print a traceback on odd JSON, record themselves only when
something was written, and read LabelMe's embedded images and masks (issues 9 and 12)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dg_fixtures import copy_photos
from images_bad import bomb_png, truncated_jpeg
from PIL import Image

from data_gen.errors import ImportFailed
from data_gen.importers import EMBEDDED_DIR, import_file
from data_gen.qalog.log import QALog, file_sha256

VIPSTUDIO = Path(sys.executable).parent / "vipstudio"


@pytest.fixture
def log(tmp_path: Path) -> Any:
    with QALog.open(tmp_path / "log.sqlite") as opened:
        yield opened


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _coco(images: list[Any], annotations: list[Any], categories: Any = None) -> dict[str, Any]:
    return {
        "images": images,
        "annotations": annotations,
        "categories": categories if categories is not None else [{"id": 1, "name": "cup"}],
    }


def _ann(i: int, image_id: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"id": i, "image_id": image_id, "category_id": 1, "bbox": [10, 10, 50, 50], **extra}


def _png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_truncated_images_and_bombs_are_refused_at_import(tmp_path: Path, log: QALog) -> None:
    folder = tmp_path / "data"
    photos = copy_photos(folder)
    truncated_jpeg(folder / "cut.jpg")
    bomb_png(folder / "bomb.png")
    images = [
        {"id": 1, "file_name": "cut.jpg"},
        {"id": 2, "file_name": "bomb.png"},
        {"id": 3, "file_name": photos["coffee"].name},
    ]
    path = _write(folder / "c.json", _coco(images, [_ann(1, 1), _ann(2, 2), _ann(3, 3)]))
    report = import_file(log, "coco", path)
    assert report.regions == 1 and report.images == 1
    reasons = dict(report.invalid)
    assert "truncated" in reasons["annotation 1"]
    assert "12000×12000" in reasons["annotation 2"] and "over the limit" in reasons["annotation 2"]
    assert [r.image_path for r in log.iter_regions()] == [str(photos["coffee"].resolve())]


def test_a_failed_import_is_not_recorded_as_done(tmp_path: Path, log: QALog) -> None:
    folder = tmp_path / "data"
    path = _write(
        folder / "c.json", _coco([{"id": 1, "file_name": "coffee.jpg"}], [_ann(1)])
    )  # the photo is not there yet: every entry is invalid
    report = import_file(log, "coco", path)
    assert report.regions == 0 and report.import_id is None
    assert log.find_imports(file_sha256(path)) == []
    copy_photos(folder)
    again = import_file(log, "coco", path)  # today: "already imported"
    assert again.regions == 1 and again.import_id is not None


def test_failed_import_cli_then_retry(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    path = _write(folder / "c.json", _coco([{"id": 1, "file_name": "coffee.jpg"}], [_ann(1)]))
    db = tmp_path / "log.sqlite"
    first = _cli("import", "--db", db, "--format", "coco", path)
    assert first.returncode == 1 and "every entry is invalid" in first.stderr
    copy_photos(folder)
    second = _cli("import", "--db", db, "--format", "coco", path)
    assert second.returncode == 0, second.stderr
    assert "imported 1 regions" in second.stderr


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VIPSTUDIO), *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("doc", "where", "reason"),
    [
        (_coco([{"id": [1], "file_name": "coffee.jpg"}], [_ann(1)]), "image entry 0", "'id'"),
        (_coco([{"id": 1, "file_name": "coffee.jpg"}], [_ann(1, [1])]), "annotation 1", "image_id"),
        (
            _coco([{"id": 1, "file_name": "coffee.jpg"}], [_ann(1, category_id=[1])]),
            "annotation 1",
            "category_id",
        ),
        (
            _coco([{"id": 1, "file_name": "coffee.jpg"}], [_ann(1, segmentation=5)]),
            "annotation 1",
            "segmentation",
        ),
        (
            _coco(
                [{"id": 1, "file_name": "coffee.jpg"}],
                [_ann(1, segmentation=[7, [1, 2, 3, 4, 5, 6]])],
            ),
            "annotation 1",
            "segmentation polygon",
        ),
        (
            _coco([{"id": 1, "file_name": "coffee.jpg"}], [_ann(1)], [{"id": {}, "name": "x"}]),
            "category entry 0",
            "'id'",
        ),
    ],
)
def test_odd_coco_values_are_invalid_entries(
    tmp_path: Path, log: QALog, doc: dict[str, Any], where: str, reason: str
) -> None:
    copy_photos(tmp_path)
    report = import_file(log, "coco", _write(tmp_path / "c.json", doc))
    assert reason in dict(report.invalid)[where]


def test_coco_flat_segmentation_and_unnamed_category(tmp_path: Path, log: QALog) -> None:
    copy_photos(tmp_path)
    doc = _coco(
        [{"id": 1, "file_name": "coffee.jpg"}],
        [
            _ann(1, segmentation=[10, 10, 60, 10, 60, 60, 10, 60]),  # one polygon, not nested
            {**_ann(2), "category_id": 2},
        ],
        [{"id": 1, "name": "cup"}, {"id": 2, "name": ""}],
    )
    report = import_file(log, "coco", _write(tmp_path / "c.json", doc))
    assert report.regions == 1
    why = dict(report.invalid)["annotation 2"]
    assert "category_id 2 has no name in 'categories'" in why and "unknown" not in why


def test_cli_prints_no_traceback_for_odd_json(tmp_path: Path) -> None:
    copy_photos(tmp_path)
    coco = _write(
        tmp_path / "c.json",
        _coco(
            [{"id": [1], "file_name": "coffee.jpg"}, {"id": 2, "file_name": "coffee.jpg"}],
            [_ann(1, 2, segmentation=5), _ann(2, [2])],
        ),
    )
    labelme = _write(
        tmp_path / "l.json",
        {
            "imagePath": "coffee.jpg",
            "shapes": [
                {"label": "a", "points": [[1, 1], [9, 1], [9, 9]], "group_id": [1]},
                {"label": ["b"], "points": [[1, 1], [9, 1], [9, 9]]},
            ],
        },
    )
    for fmt, path in (("coco", coco), ("labelme", labelme)):
        done = _cli("import", "--db", tmp_path / "log.sqlite", "--format", fmt, path)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1 and "every entry is invalid" in done.stderr


def test_labelme_list_group_id_is_an_invalid_shape(tmp_path: Path, log: QALog) -> None:
    copy_photos(tmp_path)
    shapes = [
        {"label": "a", "points": [[1, 1], [9, 1], [9, 9]], "group_id": [1]},
        {"label": "a", "points": [[20, 20], [40, 20], [40, 40]], "group_id": 3},
    ]
    path = _write(tmp_path / "l.json", {"imagePath": "coffee.jpg", "shapes": shapes})
    report = import_file(log, "labelme", path)
    assert report.regions == 1
    assert "group_id must be a number or a string" in dict(report.invalid)["l.json shape 0"]


def _labelme_embedded(tmp_path: Path, image: Image.Image, **extra: Any) -> Path:
    doc = {
        "version": "5.4.1",
        "imagePath": "gone.png",
        "imageData": _png_b64(image),
        "imageWidth": image.width,
        "imageHeight": image.height,
        "shapes": [{"label": "square", "shape_type": "rectangle", "points": [[5, 5], [25, 25]]}],
        **extra,
    }
    return _write(tmp_path / "ann" / "e.json", doc)


def test_labelme_image_embedded_in_image_data(tmp_path: Path, log: QALog) -> None:
    image = Image.new("RGB", (64, 48), (10, 120, 200))
    path = _labelme_embedded(tmp_path, image)
    report = import_file(log, "labelme", path)  # today: "gone.png: no such file"
    assert report.regions == 1 and not report.invalid
    (region,) = log.iter_regions()
    kept = Path(region.image_path)
    assert kept.parent == tmp_path / EMBEDDED_DIR and kept.suffix == ".png"
    assert np.array_equal(np.asarray(Image.open(kept).convert("RGB")), np.asarray(image))
    assert (region.image_width, region.image_height) == (64, 48)
    # A second file embedding the same picture reuses it.
    other = _labelme_embedded(tmp_path / "more", image)
    assert import_file(log, "labelme", other, again=True).regions == 1
    assert len(list((tmp_path / EMBEDDED_DIR).iterdir())) == 1


def test_labelme_embedded_image_that_is_the_file_on_disk(tmp_path: Path, log: QALog) -> None:
    photo = copy_photos(tmp_path / "ann")["coffee"]
    doc = {
        "imagePath": photo.name,
        "imageData": base64.b64encode(photo.read_bytes()).decode(),
        "shapes": [{"label": "cup", "shape_type": "rectangle", "points": [[180, 20], [420, 230]]}],
    }
    report = import_file(log, "labelme", _write(tmp_path / "ann" / "c.json", doc))
    assert report.regions == 1
    assert [r.image_path for r in log.iter_regions()] == [str(photo.resolve())]
    assert not (tmp_path / EMBEDDED_DIR).exists()


def test_labelme_mask_shape_becomes_a_polygon_region(tmp_path: Path, log: QALog) -> None:
    copy_photos(tmp_path)
    bitmap = np.zeros((40, 60), dtype=bool)
    bitmap[10:30, 5:45] = True  # a 40×20 block inside the 60×40 bitmap
    mask = _png_b64(Image.fromarray(bitmap))
    shape = {"label": "blob", "shape_type": "mask", "points": [[100, 200], [159, 239]]}
    doc = {"imagePath": "coffee.jpg", "shapes": [{**shape, "mask": mask}]}
    report = import_file(log, "labelme", _write(tmp_path / "m.json", doc))
    assert report.regions == 1, report.invalid  # today: "has no area"
    (region,) = log.iter_regions()
    assert region.label == "blob"
    assert region.region.box == (105.0, 210.0, 145.0, 230.0)
    (ring,) = region.region.polygons or ()
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert (min(xs), min(ys), max(xs), max(ys)) == (105.5, 210.5, 144.5, 229.5)


def test_labelme_ignore_label_is_left_out(tmp_path: Path, log: QALog) -> None:
    copy_photos(tmp_path)
    shapes = [
        {"label": "__ignore__", "shape_type": "rectangle", "points": [[1, 1], [50, 50]]},
        {"label": "cup", "shape_type": "rectangle", "points": [[180, 20], [420, 230]]},
    ]
    path = _write(tmp_path / "l.json", {"imagePath": "coffee.jpg", "shapes": shapes})
    report = import_file(log, "labelme", path)
    assert report.regions == 1 and report.ignored == 1 and not report.invalid
    assert [r.label for r in log.iter_regions()] == ["cup"]
    assert any("__ignore__" in line for line in report.lines())


@pytest.mark.parametrize("absolute", [False, True])
def test_image_paths_leading_outside_warn_and_strict_refuses(
    tmp_path: Path, log: QALog, absolute: bool
) -> None:
    photo = copy_photos(tmp_path / "elsewhere")["coffee"]
    written = str(photo) if absolute else "../elsewhere/coffee.jpg"
    path = _write(tmp_path / "ann" / "c.json", _coco([{"id": 1, "file_name": written}], [_ann(1)]))
    with pytest.raises(ImportFailed, match="outside"):
        import_file(log, "coco", path, strict=True)
    report = import_file(log, "coco", path)
    assert report.regions == 1
    ((where, why),) = report.warnings
    assert where == str(photo) and "outside" in why
    assert any("outside" in line for line in report.lines())
    # A labelme imagePath the same way.
    lm = _write(
        tmp_path / "ann" / "l.json",
        {
            "imagePath": written,
            "shapes": [{"label": "c", "shape_type": "rectangle", "points": [[1, 1], [9, 9]]}],
        },
    )
    with pytest.raises(ImportFailed, match="outside"):
        import_file(log, "labelme", lm, strict=True)
    assert import_file(log, "labelme", lm).warnings
