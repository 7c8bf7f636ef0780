"""From `vipstudio ask clip.mp4 --track --every` to training data: the log the real command writes
(tiny model, real tracker, a square that leaves the frame) exported as a streaming timeline and as
LLaMA-Factory clips, each read back the way its trainer reads it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from app.cli import main
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.qalog.log import QALog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from video_helpers import square_clip
from video_loaders_mirror import decode_all, lf_regularize_video, stream_getitem


def test_a_tracked_ask_over_time_exports_as_a_timeline_and_clips(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "glide.mp4"
    boxes = square_clip(clip, 20, gone_at=12)  # 10 fps; the square is gone from frame 12
    db = tmp_path / "log.sqlite"
    box = ",".join(f"{v:g}" for v in boxes[0])
    args = ["ask", str(clip), "What is <region0> doing?", "--bbox", box, "--at", "0"]
    args += ["--track", "--every", "0.3", "--model", str(tiny_model_dir)]
    done = CliRunner().invoke(main, [*args, "--max-new-tokens", "3", "--db", str(db)])
    assert done.exit_code == 3, done.output  # frames 12, 15, 18: the track was lost
    with QALog.open(db) as log:
        said = [(t.frame_index, t.answer) for t in log.video_turns()]
        assert [f for f, _ in said] == [0, 3, 6, 9]
        export(log, ExportOptions(format="streaming", out=tmp_path / "st", workers=1))
        export(
            log,
            ExportOptions(
                format="llama-factory-video", out=tmp_path / "lf", workers=1, video_fps=10
            ),
        )
    (timeline,) = json.loads((tmp_path / "st" / "train.json").read_text())
    conversation, frames = stream_getitem(timeline, tmp_path / "st")
    # At 2 fps the asks at 0, 0.3, 0.6, 0.9 s land on the grid at 0, 0.5, 1.0, 1.0 s: the later
    # of two answers on one frame stands, as VideoLLM-online's own data does.
    answers = [m for m in conversation if m["role"] == "assistant"]
    assert [m["fps_time"] for m in answers] == [0.0, 0.5, 1.0]
    assert [m["content"] for m in answers] == [a for _, a in said[:2]] + [said[3][1]]
    # The clip's frames: the grid at 2 fps over the video's frames (10 fps), through frame 10
    # where the last answer is placed (the tracker still had the square there).
    assert len(frames) == 3 and timeline["source"]["frames"] == [0, 5, 10]
    lf_rows = json.loads((tmp_path / "lf" / "train.json").read_text())
    assert len(lf_rows) == 4
    for row in lf_rows:
        clip_path = tmp_path / "lf" / row["videos"][0]
        kept, _, _ = lf_regularize_video(clip_path, video_fps=2.0)
        assert kept
        # 1 s of context either side at 10 fps, but never past frame 11: the tracker lost the
        # square at frame 12, so the clip ends where the track does.
        assert len(decode_all(clip_path)) <= 12
