"""Tiny clips for the video tests of the desktop app (made with overlays.video_io.write_video):
frames whose bars spell their own index, with a bright square gliding across them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from overlays.video_io import write_video

W, H = 128, 96
BAR = 8


def square_box(i: int, count: int) -> tuple[float, float, float, float]:
    """Where the square is on frame ``i``: left to right along the lower half."""
    x = 8 + (W - 48) * i / max(count - 1, 1)
    return (x, 50.0, x + 32, 82.0)


def frame(i: int, count: int) -> np.ndarray:
    """Frame ``i``: its index in bars on the top 16 rows, a checkered square below."""
    rng = np.random.default_rng(0)
    out = (rng.integers(20, 50, (H, W, 1), dtype=np.uint8) * np.ones((1, 1, 3), np.uint8)).copy()
    out[:16] = 0
    for bit in range(8):
        if i >> bit & 1:
            out[:16, bit * BAR : (bit + 1) * BAR] = 255
    x1, y1, x2, y2 = (round(v) for v in square_box(i, count))
    yy, xx = np.mgrid[y1:y2, x1:x2]
    out[y1:y2, x1:x2] = np.where((((yy - y1) // 4 + (xx - x1) // 4) % 2)[..., None], 230, 120)
    return out


def read_index(rgb: np.ndarray) -> int:
    """The index :func:`frame` wrote into an H×W×3 frame."""
    return sum(1 << b for b in range(8) if rgb[2:14, b * BAR + 2 : (b + 1) * BAR - 2].mean() > 128)


def make_clip(path: Path, count: int = 30, fps: float = 10.0) -> Path:
    write_video(path, (frame(i, count) for i in range(count)), fps)
    return path


def open_video(qtbot: Any, window: Any, path: Path) -> None:
    """Open ``path`` and wait until its first frame is on the canvas."""
    window.studio.open_path(path)
    qtbot.waitUntil(lambda: window.video.active, timeout=15_000)
    qtbot.waitUntil(lambda: window.video.shown_frame == window.video.frame, timeout=15_000)
