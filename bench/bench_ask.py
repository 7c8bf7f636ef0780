"""`vipstudio ask --batch` throughput (batched vs batch size 1) and log write throughput."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

import overlays as ov
from app.batch import BatchRunner
from data_gen.qalog.log import NewTurn, QALog
from vip_model.engine import GenerationSettings
from vip_model.hf import HFEngine
from vip_model.tiny import make_tiny_model

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ["coffee.jpg", "chelsea.jpg", "rocket.jpg", "astronaut.jpg"]


def write_queries(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            image = ROOT / "assets/samples" / SAMPLES[i % 4]
            box = [10 + i % 50, 10, 220, 200]
            fh.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "image": str(image),
                        "question": f"What is <region0>? {i}",
                        "bboxes": [box],
                    }
                )
                + "\n"
            )


def batch_rate(model: Path, tmp: Path, n: int, batch_size: int) -> float:
    tag = f"{model.parent.name}-{model.name}-{batch_size}"
    queries, out = tmp / f"q-{tag}.jsonl", tmp / f"a-{tag}.jsonl"
    write_queries(queries, n)
    settings = GenerationSettings(max_new_tokens=16)
    with (
        HFEngine(str(model), max_batch_size=batch_size) as engine,
        QALog.open(tmp / f"log-{tag}.sqlite") as log,
    ):
        runner = BatchRunner(engine, "bench", log=log, batch_size=batch_size, settings=settings)
        summary = runner.run(queries, out)
    assert summary.answered == n, summary.text()
    return summary.rate


def log_rate(tmp: Path, n: int = 5000) -> float:
    with QALog.open(tmp / "write.sqlite") as log:
        image = log.add_image(ROOT / "assets/samples/coffee.jpg")
        session = log.start_session(image.id)
        prompts = [ov.Rectangle((1, 2, 30, 40))]
        t0 = time.perf_counter()
        for i in range(n):
            log.add_turn(
                NewTurn(
                    session, prompts, f"q {i}?", "an answer", "m", "llava_v1", request_id=f"r{i}"
                )
            )
        return n / (time.perf_counter() - t0)


def main() -> int:
    torch.set_num_threads(1)  # steadier on a shared 2-core machine; decoding runs on 2 threads
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for scale, n in (("tiny", 64), ("small", 16)):
            model = make_tiny_model(tmp / "models" / scale, scale, seed=0).path  # type: ignore[arg-type]
            one = batch_rate(model, tmp, n, 1)
            eight = batch_rate(model, tmp, n, 8)
            print(
                f"ask --batch, {scale:<5} ({n} queries, 16 tokens): batch 1 {one:6.2f} q/s | "
                f"batch 8 {eight:6.2f} q/s | {eight / one:.2f}x"
            )
        rate = log_rate(tmp)
        print(f"log writes: {rate:,.0f} turns/s (one committed transaction per turn, WAL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
