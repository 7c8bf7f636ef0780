"""Tiny clips made with PyAV for the video tests: frames whose pixels spell their own index, and a
square moving along a known path (the tracker's ground truth)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from overlays.video_io import write_video

BITS = 8
BAR = 8  # pixels per bit: wide bars survive lossy coding


def index_frame(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    """A frame whose vertical bars are the bits of ``i`` (white = 1), least significant first."""
    frame = np.zeros((h, w, 3), np.uint8)
    for bit in range(BITS):
        if i >> bit & 1:
            frame[:, bit * BAR : (bit + 1) * BAR] = 255
    return frame


def read_index(frame: np.ndarray) -> int:
    """The index :func:`index_frame` wrote into ``frame`` (bar centres only)."""
    return sum(
        1 << bit
        for bit in range(BITS)
        if frame[:, bit * BAR + 2 : (bit + 1) * BAR - 2].mean() > 128
    )


def index_clip(path: Path, count: int = 60, *, fps: float = 30, **kwargs: object) -> Path:
    """A clip of ``count`` :func:`index_frame` frames (keyword arguments go to write_video)."""
    write_video(path, (index_frame(i) for i in range(count)), fps, **kwargs)  # type: ignore[arg-type]
    return path


def square_path(
    count: int, w: int, h: int, size: int = 40
) -> list[tuple[float, float, float, float]]:
    """Boxes of a square gliding on a diagonal then back, fully inside a w×h frame."""
    boxes = []
    for i in range(count):
        s = i / max(1, count - 1)
        x = 10 + (w - size - 20) * s
        y = 10 + (h - size - 20) * (0.5 - 0.5 * np.cos(np.pi * s))
        boxes.append((x, y, x + size, y + size))
    return boxes


def textured_square(w: int, h: int, box: Sequence[float] | None, seed: int = 0) -> np.ndarray:
    """A dark textured background with a bright checkered square at ``box`` (None: no square)."""
    rng = np.random.default_rng(seed)
    frame = (rng.integers(20, 60, (h, w, 1), dtype=np.uint8) * np.ones((1, 1, 3), np.uint8)).copy()
    if box is not None:
        x1, y1, x2, y2 = (round(v) for v in box)
        yy, xx = np.mgrid[y1:y2, x1:x2]
        checks = ((yy - y1) // 8 + (xx - x1) // 8) % 2
        frame[y1:y2, x1:x2] = np.where(checks[..., None] == 1, [230, 60, 40], [250, 220, 30])
    return frame
