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
    count: int, w: int, h: int, size: int = 40, step: float | None = None
) -> list[tuple[float, float, float, float]]:
    """Boxes of a square gliding right and down (an eased curve), fully inside a w×h frame;
    ``step`` caps its horizontal move per frame (pixels), else it crosses the whole frame."""
    travel_x, travel_y = w - size - 20, h - size - 20
    if step is not None:
        travel_x = min(travel_x, step * (count - 1))
        travel_y = min(travel_y, step * (count - 1) * 0.6)
    boxes = []
    for i in range(count):
        s = i / max(1, count - 1)
        x = 10 + travel_x * s
        y = 10 + travel_y * (0.5 - 0.5 * np.cos(np.pi * s))
        boxes.append((x, y, x + size, y + size))
    return boxes


def textured_square(w: int, h: int, box: Sequence[float] | None, seed: int = 0) -> np.ndarray:
    """A dark grey textured background with a bright, warm, irregularly blotched square at ``box``
    (None: no square). Both textures are fixed by ``seed``: only the square moves."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(20, 70, (h // 4 + 1, w // 4 + 1), dtype=np.uint8)
    frame = np.repeat(np.repeat(grey, 4, axis=0), 4, axis=1)[:h, :w, None].repeat(3, axis=2)
    if box is not None:
        x1, y1 = round(box[0]), round(box[1])
        x2, y2 = x1 + round(box[2] - box[0]), y1 + round(box[3] - box[1])
        cells = rng.random(((y2 - y1) // 5 + 1, (x2 - x1) // 5 + 1))
        blotch = np.repeat(np.repeat(cells, 5, axis=0), 5, axis=1)[: y2 - y1, : x2 - x1, None]
        warm = np.array([250, 200, 40]) * (1 - blotch) + np.array([220, 40, 30]) * blotch
        shown = warm.astype(np.uint8)[: max(0, h - y1), : max(0, w - x1)]  # may leave the frame
        frame[y1 : y1 + shown.shape[0], x1 : x1 + shown.shape[1]] = shown
    return np.ascontiguousarray(frame)
