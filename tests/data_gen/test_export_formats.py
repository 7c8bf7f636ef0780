"""Each format exported from a real log and read back the way its trainer reads it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from dg_fixtures import Sample, ask
from PIL import Image

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.export import ExportSummary, export
from data_gen.qalog.log import QALog
from data_gen.records import Selection

BBOX = re.compile(r"<bbox(\d+)>")


def run(log: QALog, fmt: str, out: Path, **kw: Any) -> ExportSummary:
    kw.setdefault("workers", 1)
    return export(log, ExportOptions(format=fmt, out=out, **kw))


def load_list(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def check_llava_conversations(turns: list[dict[str, str]]) -> None:
    assert len(turns) >= 2 and len(turns) % 2 == 0
    for i, turn in enumerate(turns):
        assert set(turn) == {"from", "value"}
        assert turn["from"] == ("human" if i % 2 == 0 else "gpt")
        assert turn["value"].strip()
    text = "".join(t["value"] for t in turns)
    assert turns[0]["value"].startswith("<image>\n") and text.count("<image>") == 1


def test_vip_llava_as_the_trainer_reads_it(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "vip"
    summary = run(sample.log, "vip-llava", out, val_fraction=0.25, seed=1)
    assert sorted(p.name for p in out.iterdir()) == [
        ".vipstudio-export",  # the marker that lets --overwrite replace it
        "images",
        "summary.json",
        "train.json",
        "val.json",
    ]
    records = load_list(out / "train.json") + load_list(out / "val.json")
    assert len(records) == 5 == summary.conversations
    assert summary.records["val"] >= 1 and summary.records["train"] >= 1
    sizes = {p.name: ov.image_size(p) for p in sample.photos.values()}
    for rec in records:
        assert set(rec) == {"id", "image", "conversations", "bboxes", "segmentations"}
        image = out / rec["image"]  # relative to the dataset folder (LLaVA's image_folder)
        assert image.is_file()
        with Image.open(image) as im:
            w, h = im.size
        assert (w, h) in sizes.values()
        one_region = rec["id"].startswith("refcocog-gpt4v-")  # the trainer adds "<image>\n"
        turns = rec["conversations"]
        check_llava_conversations(
            [{**turns[0], "value": "<image>\n" + turns[0]["value"]}, *turns[1:]]
            if one_region
            else turns
        )
        assert len(rec["segmentations"]) == len(rec["bboxes"])
        for x1, y1, x2, y2 in rec["bboxes"]:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        for seg in rec["segmentations"]:
            if seg is not None:  # a list of flat polygons, as the trainer iterates it
                for flat in seg:
                    assert len(flat) >= 6 and len(flat) % 2 == 0
                    assert all(0 <= x <= w for x in flat[0::2])
                    assert all(0 <= y <= h for y in flat[1::2])
        for turn in rec["conversations"]:
            assert all(int(n) < len(rec["bboxes"]) for n in BBOX.findall(turn["value"]))
            assert ("<bbox>" in turn["value"]) <= one_region
            assert "red rectangle" not in turn["value"]  # the trainer draws its own marks
    by_id = {r["id"]: r for r in records}
    cup = by_id[f"refcocog-gpt4v-{sample.sessions['coffee']}-{sample.turns['cup1']}"]
    assert [t["value"] for t in cup["conversations"]] == [
        "What is the cup <bbox>?",
        "A cup of coffee.",
        "Is the object <bbox> hot?",
        "It looks hot: there is steam.",  # the corrected answer
    ]
    assert cup["bboxes"] == [[180.0, 20.0, 420.0, 230.0]] and cup["segmentations"] == [None]
    cat = by_id[f"vg_rel-gpt4v-{sample.sessions['chelsea']}-{sample.turns['cat']}"]
    assert cat["conversations"][0]["value"] == (
        "<image>\nIs the cat <bbox0> looking at the object <bbox1>?"
    )
    assert cat["conversations"][1]["value"] == "No, the object <bbox0> holds a cat looking away."
    assert cat["bboxes"][0] == [100.0, 50.0, 451.0, 300.0]  # clipped to the 451×300 photo
    rocket = by_id[f"refcocog-gpt4v-{sample.sessions['rocket']}-{sample.turns['rocket']}"]
    assert rocket["segmentations"] == [[[200.0, 50.0, 260.0, 50.0, 270.0, 300.0, 190.0, 300.0]]]
    whole = by_id[f"vipstudio-{sample.sessions['astronaut']}-{sample.turns['whole']}"]
    assert whole["bboxes"] == [] and whole["segmentations"] == []
    # each image copied once
    assert len(list((out / "images").iterdir())) == 4 == summary.images["copied"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["skipped"]["rejected turn"] == 1
    assert saved["skipped"]["duplicate conversation"] == 1


def test_llava_rendered_images_are_exactly_what_was_seen(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    run(sample.log, "llava-rendered", out, rendered_format="png")
    records = load_list(out / "train.json")
    assert len(records) == 5
    turns = {t.id: t for t in sample.log.iter_turns()}
    for rec in records:
        assert set(rec) == {"id", "image", "conversations"}
        check_llava_conversations(rec["conversations"])
        first = turns[int(rec["id"].rsplit("-", 1)[1])]
        question = rec["conversations"][0]["value"].removeprefix("<image>\n")
        assert question == first.question  # referring phrases kept as logged
        expected = ov.render(ov.load_image(first.image_path), first.prompts)
        with Image.open(out / rec["image"]) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(expected))


def test_llama_factory_records_and_dataset_info(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "lf"
    run(sample.log, "llama-factory", out, val_fraction=0.3, seed=2, id_prefix="mine")
    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) == {"mine_train", "mine_val"}
    for name, entry in info.items():
        assert entry["formatting"] == "sharegpt"
        assert entry["columns"] == {"messages": "messages", "images": "images"}
        assert entry["tags"]["user_tag"] == "user"
        records = load_list(out / entry["file_name"])
        assert records, name
        for rec in records:
            assert set(rec) == {"messages", "images"}
            text = "".join(m["content"] for m in rec["messages"])
            assert text.count("<image>") == len(rec["images"]) == 1
            assert rec["messages"][0]["content"].startswith("<image>")
            roles = [m["role"] for m in rec["messages"]]
            assert roles == ["user", "assistant"] * (len(roles) // 2)
            for image in rec["images"]:
                assert (out / image).is_file()  # relative to dataset_dir


def test_hf_parquet_read_with_pyarrow(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "hf"
    summary = run(sample.log, "hf", out, val_fraction=0.25, seed=1)
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == ["train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]
    assert "path: data/validation-*.parquet" in (out / "README.md").read_text()
    rows = []
    for name in names:
        table = pq.read_table(out / "data" / name)
        assert table.schema.names == ["id", "messages", "images"]
        features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
        assert features["images"] == [{"_type": "Image"}]
        rows += table.to_pylist()
    assert len(rows) == sum(summary.records.values()) == 5
    for row in rows:
        messages = row["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        slots = [c for m in messages for c in m["content"] if c["type"] == "image"]
        assert len(slots) == len(row["images"]) == 1
        assert messages[0]["content"][0] == {"type": "image", "text": None}
        assert all(c["text"] for m in messages for c in m["content"] if c["type"] == "text")
        image = Image.open(io.BytesIO(row["images"][0]["bytes"]))
        image.load()
        assert image.size in {ov.image_size(p) for p in sample.photos.values()}
        assert row["images"][0]["path"]
    assert not (out / ".render").exists()


@pytest.mark.parametrize("mode", ["link", "absolute"])
def test_image_modes(sample: Sample, tmp_path: Path, mode: str) -> None:
    out = tmp_path / mode
    run(sample.log, "vip-llava", out, images=mode)
    sources = {p.resolve() for p in sample.photos.values()}
    for rec in load_list(out / "train.json"):
        path = Path(rec["image"])
        if mode == "absolute":
            assert path.is_absolute() and path in sources
        else:
            link = out / path
            assert link.is_symlink() and link.resolve() in sources


def test_exif_rotated_photo_gets_an_upright_copy(tmp_path: Path) -> None:
    src = Image.open(Path(__file__).resolve().parents[2] / "assets/samples/coffee.jpg")
    stored = src.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote (400×600)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": upright it is 600×400 again
    photo = tmp_path / "phone.jpg"
    stored.save(photo, exif=exif)
    with QALog.open(tmp_path / "log.sqlite") as log:
        image = log.add_image(photo)
        assert (image.width, image.height) == (600, 400)
        session = log.start_session(image.id)
        ask(log, session, [ov.Rectangle((180, 20, 420, 230))], "What is <region>?", "A cup.")
        summary = run(log, "vip-llava", tmp_path / "out", images="link")
    rec = load_list(tmp_path / "out" / "train.json")[0]
    with Image.open(tmp_path / "out" / rec["image"]) as im:
        assert im.size == (600, 400) and im.getexif().get(0x0112, 1) == 1
    assert summary.images == {"upright copy": 1}


def test_parallel_rendering_gives_the_same_dataset(sample: Sample, tmp_path: Path) -> None:
    one = run(sample.log, "llava-rendered", tmp_path / "one", augment=1, workers=1)
    two = run(sample.log, "llava-rendered", tmp_path / "two", augment=1, workers=2)
    assert one.records == two.records
    assert (tmp_path / "one/train.json").read_bytes() == (tmp_path / "two/train.json").read_bytes()
    for path in (tmp_path / "one/images").iterdir():
        assert path.read_bytes() == (tmp_path / "two/images" / path.name).read_bytes()


def test_selection_reaches_the_files(sample: Sample, tmp_path: Path) -> None:
    summary = run(
        sample.log, "llava-rendered", tmp_path / "acc", selection=Selection(review=("accepted",))
    )
    assert summary.records == {"train": 1, "val": 0}
    assert summary.counts["turns not selected (review status)"] > 0
