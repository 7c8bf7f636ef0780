"""Which files are videos, by suffix: without loading PyAV (``overlays.video_io`` does), so the
file list and the desktop app's start need not pay for it."""

from __future__ import annotations

import os
from pathlib import Path

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video, by its suffix (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
