"""Clips for the `ask` video tests, made with PyAV: an object of known position for the tracker."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overlays.video_io import write_video


def square_clip(
    path: Path, count: int, gone_at: int, fps: float = 10
) -> list[tuple[float, float, float, float]]:
    """A checkered square gliding right 3 px a frame on a fixed textured background, gone from
    frame ``gone_at``; returns its boxes."""
    rng = np.random.default_rng(0)
    background = rng.integers(20, 60, (120, 160, 1), dtype=np.uint8) * np.ones((1, 1, 3), np.uint8)
    boxes, frames = [], []
    for i in range(count):
        x, y = 10 + 3 * i, 30
        boxes.append((float(x), float(y), float(x + 32), float(y + 32)))
        frame = background.copy()
        if i < gone_at:
            yy, xx = np.mgrid[0:32, 0:32]
            checks = (yy // 8 + xx // 8) % 2
            frame[y : y + 32, x : x + 32] = np.where(checks[..., None] == 1, [230, 60, 40],
                                                     [250, 220, 30])  # fmt: skip
        frames.append(frame)
    write_video(path, frames, fps, crf=18)
    return boxes
