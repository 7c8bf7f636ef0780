"""Image formats and the log's video turns: a turn about a frame ("<video>#frame=<i>") has no
image file to place, so an image export leaves it out saying it is a video turn and which
formats take it — never "image unreadable … no such file", and --strict does not stop on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.qalog.log import ImageFile, NewTurn, QALog
from data_gen.qalog.log_video import frame_image
from overlays.video_io import VideoInfo

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"
VIPSTUDIO = Path(sys.executable).parent / "vipstudio"
IMAGE_FORMATS = ("vip-llava", "llava-rendered", "llama-factory", "hf", "swift")


def _turn(question: str) -> NewTurn:
    return NewTurn(
        session_id=0,
        prompts=[ov.Rectangle((4, 4, 30, 30))],
        question=question,
        answer="a cup",
        model="tiny",
        template="llava_v1",
    )


@pytest.fixture
def mixed_log(tmp_path: Path) -> Path:
    """One turn on a photo and one on frame 3 of a clip (recorded as the `ask` command does)."""
    clip = VideoInfo(
        path=str(tmp_path / "clip.mp4"),
        sha256="c" * 64,
        width=64,
        height=48,
        fps=25.0,
        frame_count=50,
        duration=2.0,
        codec="h264",
        variable_frame_rate=False,
    )
    path = tmp_path / "log.sqlite"
    with QALog.open(path) as log:
        log.record_turn(_turn("What is <region0>?"), image=ImageFile.read(SAMPLE))
        log.record_turn(
            _turn("What is <region0> doing?"),
            image=frame_image(clip, 3, Image.new("RGB", (64, 48), (90, 0, 0))),
            video=clip,
            frame_index=3,
            frame_time=0.12,
        )
    return path


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_an_image_format_leaves_a_video_turn_out_with_its_reason(
    fmt: str, mixed_log: Path, tmp_path: Path
) -> None:
    with QALog.open(mixed_log) as log:
        summary = export(log, ExportOptions(fmt, tmp_path / fmt, workers=1, strict=True))
    assert sum(summary.records.values()) == 1 and summary.turns == 1
    [(reason, count)] = summary.skipped.items()
    assert count == 1 and reason.startswith("video turn")
    assert "videorefer" in reason and "llama-factory-video" in reason


def test_the_summary_line_names_the_video_formats(mixed_log: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(VIPSTUDIO), "export", "--db", mixed_log, "--format", "vip-llava", "--out",
         tmp_path / "ds"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "left out: 1 × video turn (export it with videorefer" in done.stderr
    assert "unreadable" not in done.stderr and "no such file" not in done.stderr
