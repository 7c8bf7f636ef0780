"""`vipstudio eval` throughput: items/s through the batch runner (batch 8 against batch 1, the
baseline measured in the same run), a resumed run (nothing to ask: reading and scoring only),
and the offline scorers alone."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PIL import Image

import overlays as ov
from app.evaluate import ModelRun, evaluate
from data_gen.evaluate import keyword_score, load_vip_bench, token_f1
from vip_model.engine import GenerationSettings
from vip_model.hf import HFEngine
from vip_model.tiny import make_tiny_model

N = 24
ANSWERS = ["0.75<OR>3/4", "cat<AND>dog", "a red cup"]


def make_bench(root: Path, n: int) -> Path:
    """``n`` questions in the ViP-Bench layout (bbox split only)."""
    (root / "bbox" / "images").mkdir(parents=True)
    meta, lines = {}, []
    for qid in range(n):
        image = Image.new("RGB", (320, 240), (qid * 7 % 255, 120, 200))
        box = (20 + qid % 40, 30, 200, 180)
        ov.render(image, [ov.Rectangle(box)]).save(root / "bbox" / "images" / f"{qid}.png")
        meta[f"v1_{qid}"] = {
            "image": f"{qid}.png",
            "question": "What is the object <obj>?",
            "answer": ANSWERS[qid % 3],
            "capability": ["rec", "ocr"][: 1 + qid % 2],
        }
        text = f"What is the object within the red rectangle? ({qid})"
        lines.append(json.dumps({"question_id": qid, "image": f"{qid}.png", "text": text}))
    (root / "vip-bench-meta-data.json").write_text(json.dumps(meta))
    (root / "bbox" / "questions.jsonl").write_text("\n".join(lines) + "\n")
    return root


def rate(model: Path, bench: Path, out: Path, batch_size: int) -> float:
    items = load_vip_bench(bench, ["bbox"])
    run = ModelRun("bench", lambda: HFEngine(str(model), max_batch_size=batch_size))
    started = time.perf_counter()
    report, _ = evaluate(
        "vip-bench",
        items,
        [run],
        out,
        batch_size=batch_size,
        settings=GenerationSettings(max_new_tokens=16),
    )
    elapsed = time.perf_counter() - started
    assert len(report.results) == len(items)
    return len(items) / elapsed


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = make_tiny_model(tmp / "tiny", "tiny", seed=0).path
        bench = make_bench(tmp / "vb", N)
        rate(model, bench, tmp / "warm", 8)  # first load and first generate: not measured
        one = rate(model, bench, tmp / "b1", 1)
        eight = rate(model, bench, tmp / "b8", 8)
        resumed = rate(model, bench, tmp / "b8", 8)
        print(f"eval, {N} ViP-Bench items, tiny model, 16 new tokens (model load included)")
        print(f"  batch size 1 (baseline): {one:8.2f} items/s")
        print(f"  batch size 8:            {eight:8.2f} items/s  ({eight / one:.2f}x)")
        print(f"  resumed (all answered):  {resumed:8.2f} items/s  ({resumed / one:.2f}x)")
        pairs = [("x = -1 or x = -5, and a cat", ANSWERS[i % 3]) for i in range(20000)]
        started = time.perf_counter()
        for said, truth in pairs:
            keyword_score(said, truth)
        keyword = len(pairs) / (time.perf_counter() - started)
        started = time.perf_counter()
        for said, truth in pairs:
            token_f1(said, truth)
        f1 = len(pairs) / (time.perf_counter() - started)
        print(f"  keyword rule alone:      {keyword:8.0f} answers/s")
        print(f"  token F1 alone:          {f1:8.0f} answers/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
