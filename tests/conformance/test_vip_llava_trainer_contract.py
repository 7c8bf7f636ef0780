"""`vip-llava` exports through ViP-LLaVA's own trainer (its text handling, mirrored).

The trainer's rules (vip_trainer_mirror.py, from mu-cai/ViP-LLaVA's source): ids are
``DATASET-SUBTYPE-…``; ``refcocog-gpt4v`` takes one region and ``<bbox>``, prepends ``<image>\\n``;
``vg_rel-gpt4v`` takes two or more and ``<bboxN>``, draws boxes only; other ids draw nothing.
A record it cannot process is silently replaced by a random other one, so each check here is one
that training would never report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dg_fixtures import Sample, ask
from vip_trainer_mirror import VISUAL_PROMPT_CONFIG, train_record

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.errors import ExportFailed, InvalidSelection
from data_gen.export import ExportSummary, export
from data_gen.export_vip import VG_REL_NOTE

PLACEHOLDER = re.compile(r"<bbox\d*>")


def run(sample: Sample, out: Path, **kw: Any) -> tuple[ExportSummary, list[dict[str, Any]]]:
    summary = export(sample.log, ExportOptions(format="vip-llava", out=out, workers=1, **kw))
    return summary, json.loads((out / "train.json").read_text(encoding="utf-8"))


def add_three_regions(sample: Sample) -> None:
    image = sample.log.add_image(sample.photos["coffee"])
    session = sample.log.start_session(image.id, source="gui")
    prompts = ov.assign_distinct_colors(
        [
            ov.Rectangle((180, 20, 420, 230), label="cup"),
            ov.Ellipse((150, 180, 460, 300), label="saucer"),
            ov.generate(  # an outline: kept in segmentations, not drawn by vg_rel
                "contour",
                ov.Region.from_polygons([((480, 280), (520, 280), (520, 320))]),
                (600, 400),
                rng=1,
                label="spoon",
            ),
        ]
    )
    ask(sample.log, session, prompts, "Is <region0> on <region1> near <region2>?", "Yes.")


def check_contract(record: dict[str, Any]) -> None:
    """What must hold for the trainer to draw every region and replace every reference."""
    parts = record["id"].split("-")
    assert len(parts) >= 3, record["id"]
    regions = len(record["bboxes"])
    assert len(record["segmentations"]) == regions
    prefix = "-".join(parts[:2])
    if regions == 0:
        assert parts[0] not in VISUAL_PROMPT_CONFIG  # nothing to draw: an id it does not know
    elif regions == 1:
        assert prefix == "refcocog-gpt4v"
    else:
        assert prefix == "vg_rel-gpt4v"
    for seed in range(8):  # the trainer samples kinds and colours: several draws
        trained = train_record(record, seed)  # raises where the trainer would swallow it
        texts = [t["value"] for t in trained.conversations]
        assert "".join(texts).count("<image>") == 1 and texts[0].startswith("<image>\n")
        assert not any(PLACEHOLDER.search(t) for t in texts), texts
        assert len(trained.drawn) == regions
        if prefix == "vg_rel-gpt4v":
            assert {d.kind for d in trained.drawn} <= {"rectangle", "ellipse"}
            assert all(d.segmentation is None for d in trained.drawn)


def test_every_record_is_drawn_and_replaced_by_the_trainer(sample: Sample, tmp_path: Path) -> None:
    add_three_regions(sample)
    summary, records = run(sample, tmp_path / "vip")
    for record in records:
        check_contract(record)
        # every region of this sample's records is named in its text, by the path's placeholder
        named = set(PLACEHOLDER.findall(json.dumps(record["conversations"])))
        regions = len(record["bboxes"])
        expected = {"<bbox>"} if regions == 1 else {f"<bbox{i}>" for i in range(regions)}
        assert named == (expected if regions else set()), record["id"]
    assert summary.id_paths == {"refcocog-gpt4v": 3, "vg_rel-gpt4v": 2, "vipstudio": 1}
    lines = "\n".join(summary.lines())
    assert "ids refcocog-gpt4v-…: 3 records (one region" in lines
    assert "ids vg_rel-gpt4v-…: 2 records (2+ regions" in lines
    assert summary.notes == {VG_REL_NOTE: 1}
    assert f"note: 1 × {VG_REL_NOTE}" in lines
    cup = next(r for r in records if r["id"].endswith(f"-{sample.turns['cup1']}"))
    assert [t["value"] for t in cup["conversations"]][:3] == [
        "What is the cup <bbox>?",  # the trainer prepends <image>\n itself
        "A cup of coffee.",
        "Is the object <bbox> hot?",
    ]
    trained = train_record(cup, seed=1)
    first = trained.conversations[0]["value"]
    assert first.startswith("<image>\nWhat is the cup ") and "the object" not in first
    assert re.fullmatch(r"<image>\nWhat is the cup (within|with|at|pointed to by) the .+\?", first)


def test_the_readme_advice_no_longer_breaks_single_regions(sample: Sample, tmp_path: Path) -> None:
    # before: --id-prefix vg_rel-gpt4v wrote every one-region record, each a crash in training
    summary, records = run(sample, tmp_path / "vg", id_prefix="vg_rel-gpt4v")
    assert [len(r["bboxes"]) for r in records] == [2]
    for record in records:
        check_contract(record)
    reasons = [r for r in summary.skipped if "vg_rel-gpt4v" in r]
    assert len(reasons) == 2  # "1 region" (4 turns) and "0 regions" (1 turn)
    assert sum(summary.skipped[r] for r in reasons) == 5
    with pytest.raises(ExportFailed, match="takes records with 2 or more region"):
        run(sample, tmp_path / "strict", id_prefix="vg_rel-gpt4v", strict=True)


def test_explicit_prefixes(sample: Sample, tmp_path: Path) -> None:
    _, records = run(sample, tmp_path / "one", id_prefix="refcocog-gpt4v")
    assert len(records) == 3 and all(len(r["bboxes"]) == 1 for r in records)
    for record in records:
        check_contract(record)
    summary, records = run(sample, tmp_path / "plain", id_prefix="mine")
    assert [r["id"].split("-")[0] for r in records] == ["mine"]  # only the no-region record
    assert "mine-…: 1 records (no region, nothing drawn)" in "\n".join(summary.lines())
    for bad in ("vcr", "refcocog", "vg_rel-other", "flickr30k-gpt4v"):
        with pytest.raises(InvalidSelection, match="--id-prefix"):
            ExportOptions(format="vip-llava", out=tmp_path / "x", id_prefix=bad)
    ExportOptions(format="hf", out=tmp_path / "x", id_prefix="vcr")  # other formats: any name


def test_cli_says_which_way_records_went(sample: Sample, tmp_path: Path) -> None:
    vipstudio = Path(sys.executable).parent / "vipstudio"
    args = [str(vipstudio), "export", "--db", str(sample.path), "--format", "vip-llava"]
    done = subprocess.run(
        [*args, "--out", str(tmp_path / "a"), "--workers", "1"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "ids refcocog-gpt4v-…: 3 records" in done.stderr
    assert "ids vg_rel-gpt4v-…: 1 records" in done.stderr
    bad = subprocess.run(
        [*args, "--out", str(tmp_path / "b"), "--id-prefix", "vcr"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--id-prefix" in bad.stderr
