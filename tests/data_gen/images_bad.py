"""Broken image files for the import and export tests: truncated, bombs, 16-bit greys."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(path: Path, side: int = 12000) -> Path:
    """A valid 1-bit PNG of ``side``² pixels (144 MP by default) in about 18 KB."""
    raw = zlib.compress(b"\0" * (side * (side // 8 + 1)), 9)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")
    )
    return path


def truncated_jpeg(path: Path, size: tuple[int, int] = (120, 80), rotated: bool = False) -> Path:
    """A noisy JPEG cut short: its header (and EXIF) read fine, its pixels do not decode."""
    image = Image.effect_noise(size, 40).convert("RGB")
    exif = image.getexif()
    if rotated:
        exif[0x0112] = 6
    image.save(path, quality=90, exif=exif)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 400])
    return path


def grey16_png(path: Path, size: tuple[int, int] = (40, 30), value: int = 32768) -> Path:
    """A 16-bit greyscale PNG (Pillow mode I;16) of one mid-grey value."""
    Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint16)).save(path)
    return path
