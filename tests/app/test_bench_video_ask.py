"""bench/bench_video_ask.py times the CLI's ask-over-time path at batch size 1 and 8: both runs
answer every sampled frame, the same frames with the same (greedy) answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from vip_model.hf import HFEngine

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_video_ask.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_video_ask", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_batched_and_one_at_a_time_answer_the_same_frames(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    bench = _bench()
    clip = bench.make_clip(tmp_path / "clip.mp4", frames=12)
    with HFEngine(str(tiny_model_dir), max_batch_size=8) as engine:
        one_rate, one = bench.over_time(engine, clip, 1, 0.1, None)
        eight_rate, eight = bench.over_time(engine, clip, 8, 0.1, None)
    assert [r["frame"] for r in one] == list(range(12))
    assert [(r["frame"], r["answer"]) for r in eight] == [(r["frame"], r["answer"]) for r in one]
    assert one_rate > 0 and eight_rate > 0
