"""Augmentation: other prompt kinds drawn from the training distribution, texts rewritten,
the same samples from the same seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from dg_fixtures import Sample
from PIL import Image

import overlays as ov
from data_gen.augment import redrawn_prompts, redrawn_texts
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.records import Selection, iter_conversations


def _conversations(sample: Sample) -> dict[int, object]:
    return {c.first_turn: c for c in iter_conversations(sample.log, Selection())}


def test_variants_redraw_every_region_with_other_kinds(sample: Sample) -> None:
    convs = _conversations(sample)
    cat = convs[sample.turns["cat"]]
    kinds_seen = []
    for variant in range(1, 8):
        prompts = redrawn_prompts(cat, variant, seed=5)
        assert len(prompts) == 2
        assert prompts[0].kind != "rectangle" and prompts[1].kind != "arrow"
        assert prompts[0].label == "cat"
        assert prompts[0].marked_region() == cat.regions[0]
        names = [p.style.color_name for p in prompts]
        assert None not in names and names[0] != names[1]  # two regions: distinct named colours
        kinds_seen.append(prompts[0].kind)
    assert len(set(kinds_seen)) == 7  # 7 variants walk through the 7 other kinds
    assert redrawn_prompts(cat, 3, seed=5) == redrawn_prompts(cat, 3, seed=5)
    assert redrawn_prompts(cat, 3, seed=5) != redrawn_prompts(cat, 3, seed=6)


def test_texts_name_the_new_marks(sample: Sample) -> None:
    cup = _conversations(sample)[sample.turns["cup1"]]
    for variant in range(1, 6):
        new = redrawn_prompts(cup, variant, seed=0)
        (q1, a1), (q2, a2) = redrawn_texts(cup, new)
        word, _ = ov.SHAPE_WORDS[new[0].kind]
        mark = ov.mark_phrase(new[0])
        assert q1 == f"What is the cup {word} {mark}?"
        assert q2 == f"Is {mark} hot?"
        assert "rectangle" not in q1 + q2
        if new[0].style.color_name is None:
            assert mark == f"the {ov.SHAPE_WORDS[new[0].kind][1]}"
        assert (a1, a2) == ("A cup of coffee.", "It looks hot: there is steam.")


def test_augmented_export_is_reproducible(sample: Sample, tmp_path: Path) -> None:
    def run(name: str, seed: int) -> Path:
        out = tmp_path / name
        export(
            sample.log,
            ExportOptions(format="llava-rendered", out=out, augment=2, seed=seed, workers=1),
        )
        return out

    def run_elsewhere(name: str, seed: int) -> Path:
        # Another process with another hash seed: reproducible must not mean "same process".
        out = tmp_path / name
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "vipstudio"),
                "export",
                "--db",
                str(sample.path),
                "--format",
                "llava-rendered",
                "--out",
                str(out),
                "--augment",
                "2",
                "--seed",
                str(seed),
                "--workers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": "12345"},
        )
        assert done.returncode == 0, done.stderr
        return out

    a, b, c = run("a", 1), run_elsewhere("b", 1), run("c", 2)
    assert (a / "train.json").read_bytes() == (b / "train.json").read_bytes()
    assert (a / "train.json").read_bytes() != (c / "train.json").read_bytes()
    records = json.loads((a / "train.json").read_text())
    # 4 conversations with prompts × (1 + 2) + the whole-image one
    assert len(records) == 4 * 3 + 1
    by_id = {r["id"]: r for r in records}
    cup_id = f"vipstudio-{sample.sessions['coffee']}-{sample.turns['cup1']}"
    original = by_id[cup_id]["conversations"][0]["value"]
    for k in (1, 2):
        aug = by_id[f"{cup_id}-aug{k}"]
        assert aug["conversations"][0]["value"] != original
        assert "red rectangle" not in aug["conversations"][0]["value"]
        with Image.open(a / aug["image"]) as im, Image.open(a / by_id[cup_id]["image"]) as orig:
            assert im.size == orig.size
            assert not np.array_equal(np.asarray(im), np.asarray(orig))  # redrawn
    for record in records:
        assert (b / record["image"]).read_bytes() == (a / record["image"]).read_bytes()
