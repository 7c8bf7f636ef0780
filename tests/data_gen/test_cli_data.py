"""`vipstudio export|import|report` through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dg_fixtures import Sample
from PIL import Image

from data_gen.report import collect_stats

VIPSTUDIO = Path(sys.executable).parent / "vipstudio"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VIPSTUDIO), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_export_then_refuse_to_overwrite(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    args = ["export", "--db", sample.path, "--format", "llama-factory", "--out", out]
    done = cli(*args, "--val-fraction", "0.25", "--augment", "1", "--workers", "1", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["augmented"] == 4 and summary["skipped"]["rejected turn"] == 1
    assert (out / "dataset_info.json").is_file()
    again = cli(*args)
    assert again.returncode == 1
    assert "already exists: pass --overwrite" in again.stderr and "Traceback" not in again.stderr
    human = cli(*args, "--overwrite", "--review", "accepted")
    assert human.returncode == 0
    assert "llama-factory →" in human.stderr and "left out" in human.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "vip-llava", "--augment", "2"], "does not apply to vip-llava"),
        (["--format", "hf", "--since", "last week"], "not a date"),
    ],
)
def test_export_errors_are_one_line(
    sample: Sample, tmp_path: Path, extra: list, message: str
) -> None:
    done = cli("export", "--db", sample.path, "--out", tmp_path / "x", *extra)
    assert done.returncode == 1 and message in done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "x").exists()


def test_import_with_queries(tmp_path: Path, sample: Sample) -> None:
    coco = {
        "images": [{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
        "categories": [{"id": 1, "name": "cup"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [180, 20, 240, 210]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": "bad"},
        ],
    }
    path = sample.photos["coffee"].parent / "coco.json"
    path.write_text(json.dumps(coco))
    queries = tmp_path / "q.jsonl"
    done = cli(
        "import", "--db", tmp_path / "new.sqlite", "--format", "coco", path,
        "--queries", queries, "--question", "What is <region> made of?",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imported 1 regions" in done.stderr and "annotation 2" in done.stderr
    lines = queries.read_text().splitlines()
    assert len(lines) == 1
    query = json.loads(lines[0])
    assert query["question"] == "What is <region> made of?"
    assert query["prompts"][0]["label"] == "cup"
    bad = cli("import", "--db", tmp_path / "new.sqlite", "--format", "coco", path,
              "--again", "--queries", queries, "--question", "What is it?")  # fmt: skip
    assert bad.returncode == 1 and "<region>" in bad.stderr


def test_report_text_json_and_plot(sample: Sample, tmp_path: Path) -> None:
    plot = tmp_path / "report.png"
    done = cli("report", "--db", sample.path, "--plot", plot, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["turns"] == 10 and data["review"]["rejected"] == 1
    assert data["prompt_kind"]["rectangle"] >= 6 and data["colour"]["lime"] == 1
    assert data["question_words"]["count"] == 10
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width >= 1000
    text = cli("report", "--db", sample.path, "--review", "accepted")
    assert text.returncode == 0 and text.stdout.startswith("1 turns on 1 images")


def test_stats_library(sample: Sample) -> None:
    stats = collect_stats(sample.log, source="cli")
    assert stats.turns == 7 and stats.counts["source"] == {"cli": 7}
    assert sum(stats.answer_words.values()) == stats.turns


def test_every_command_has_help() -> None:
    for command in ("export", "import", "report"):
        done = cli(command, "--help")
        assert done.returncode == 0 and "vipstudio " + command in done.stdout
