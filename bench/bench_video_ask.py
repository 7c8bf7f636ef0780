"""Ask over time (`vipstudio ask clip.mp4 ... --every S`): frames/s with the sampled frames
batched through the engine (``--batch-size 8``) vs one frame at a time (``--batch-size 1``),
both measured in this run on the same generated clip, question, region and tiny model."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

import overlays as ov
from app.ask_over_time import OverTime
from app.ask_video import When, plan
from data_gen.qalog.log import QALog
from overlays.video_io import VideoReader
from overlays.video_write import write_video
from vip_model.engine import GenerationSettings
from vip_model.hf import HFEngine
from vip_model.tiny import make_tiny_model

QUESTION = "What is <region0> doing?"
TOKENS = 16


def make_clip(path: Path, frames: int, fps: float = 10.0) -> Path:
    """A 320x240 clip of a square gliding right over a noisy background."""
    rng = np.random.default_rng(0)
    background = rng.integers(20, 80, (240, 320, 3), dtype=np.uint8)
    images = []
    for i in range(frames):
        frame = background.copy()
        x = 10 + 4 * i
        frame[100:148, x : x + 48] = (230, 60, 40)
        images.append(frame)
    write_video(path, images, fps, crf=18)
    return path


def over_time(
    engine: HFEngine, clip: Path, batch_size: int, every: float, log: QALog | None
) -> tuple[float, list[dict[str, Any]]]:
    """Frames/s of one ask-over-time run (the CLI's path: plan, decode, prepare, batch, log),
    and its records in frame order."""
    records: list[dict[str, Any]] = []
    with VideoReader(clip) as reader:
        t0 = time.perf_counter()
        planned = plan(reader, [ov.Rectangle((10, 100, 58, 148))], When(at=0.0, every=every))
        run = OverTime(
            engine,
            "bench",
            log,
            reader,
            clip,
            QUESTION,
            GenerationSettings(max_new_tokens=TOKENS),
            "llava_v1",
            batch_size,
            records.append,
        )
        run.run(planned)
        elapsed = time.perf_counter() - t0
    assert run.missing == 0 and run.answered == len(planned.frames), records
    return run.answered / elapsed, records


def main() -> int:
    torch.set_num_threads(1)  # steadier on a shared 2-core machine
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model = make_tiny_model(tmp / "tiny", "tiny", seed=0).path
        clip = make_clip(tmp / "clip.mp4", frames=64)
        with HFEngine(str(model), max_batch_size=8) as engine:
            over_time(engine, clip, 8, 1.0, None)  # warm-up: first-call costs out of both
            with QALog.open(tmp / "log.sqlite") as log:
                one, _ = over_time(engine, clip, 1, 0.1, log)
                eight, _ = over_time(engine, clip, 8, 0.1, log)
        print(
            f"ask over time, tiny model, 64 frames of a 320x240 clip, {TOKENS} tokens, logged: "
            f"batch 1 {one:6.2f} frames/s | batch 8 {eight:6.2f} frames/s | {eight / one:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
