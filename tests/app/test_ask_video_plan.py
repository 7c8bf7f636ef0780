"""Which frames `ask` asks about in a video, and with which prompts (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import overlays as ov
from app.ask_video import When, WhenError, plan
from overlays.video_io import VideoReader, write_video

BOX = ov.Rectangle((4, 4, 30, 30))


@pytest.fixture(scope="module")
def phone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A variable-frame-rate clip, as phones record: frames at uneven times."""
    path = tmp_path_factory.mktemp("vfr") / "phone.mp4"
    times = [0.0, 0.1, 0.2, 0.5, 0.6, 1.4, 1.5, 1.6, 1.7, 1.8]
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(len(times))]
    write_video(path, frames, 10, times=times)
    return path


def test_a_variable_frame_rate_clip_is_asked_by_timestamps(phone_clip: Path) -> None:
    with VideoReader(phone_clip) as reader:
        assert reader.variable_frame_rate
        one = plan(reader, [BOX], When(at=0.55)).frames
        assert [(f.index, f.time) for f in one] == [(3, pytest.approx(0.5))]
        # every 0.4 s from 0: the frame shown at 0, 0.4, 0.8, 1.2, 1.6 (repeats dropped)
        over = plan(reader, [BOX], When(at=0, every=0.4, until=1.6)).frames
        assert [f.index for f in over] == [0, 2, 4, 7]
        assert [f.time for f in over] == pytest.approx([0.0, 0.2, 0.6, 1.6])
        assert all(f.prompts == (BOX,) and f.lost is None for f in over)


def test_too_many_frames_are_refused_before_any_tracking(phone_clip: Path) -> None:
    with VideoReader(phone_clip) as reader, pytest.raises(WhenError, match="limit of 3"):
        plan(reader, [BOX], When(at=0, every=0.1, track=True), max_frames=3)
