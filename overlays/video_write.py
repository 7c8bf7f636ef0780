"""Writing videos with PyAV (tests make clips with it; exports write them)."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray | Image.Image],
    fps: float,
    *,
    codec: str = "libx264",
    crf: int = 23,
    times: Iterable[float] | None = None,
    gop: int | None = None,
    options: Mapping[str, str] | None = None,
) -> None:
    """Encode RGB frames into a video file (container from the suffix), written to a temporary
    file then moved into place. Odd widths/heights are padded by one edge pixel (4:2:0 needs
    even sizes); ``times`` (seconds, increasing) gives variable-frame-rate timestamps; ``gop``
    the most frames between keyframes (the encoder's default otherwise); ``options`` more encoder
    options (libx264: ``{"preset": "veryfast", "threads": "1"}``)."""
    target = Path(path)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps {fps:g} must be a positive number")
    if codec not in av.codecs_available:
        raise ValueError(f"codec {codec!r} is not in this PyAV build: use libx264")
    rate = Fraction(fps).limit_denominator(1001)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    stamps = iter(times) if times is not None else None
    last_pts = -1
    try:
        with av.open(str(tmp), mode="w") as container:
            stream: av.VideoStream = container.add_stream(codec, rate=rate)  # type: ignore[assignment]
            if times is not None:
                stream.time_base = Fraction(1, 90000)
            settings: dict[str, object] = {}
            if codec in ("libx264", "libx265"):
                settings["crf"] = str(crf)
            if codec == "libx265":
                settings["x265-params"] = "log-level=error"
            settings.update(options or {})
            stream.options = settings
            stream.pix_fmt = "yuv420p"
            if gop is not None:
                stream.codec_context.gop_size = gop
            count = 0
            for item in frames:
                rgb = _even(
                    np.asarray(item.convert("RGB") if isinstance(item, Image.Image) else item)
                )
                if count == 0:
                    stream.height, stream.width = rgb.shape[:2]
                elif rgb.shape[:2] != (stream.height, stream.width):
                    raise ValueError(
                        f"frame {count} is {rgb.shape[1]}×{rgb.shape[0]}, the first was "
                        f"{stream.width}×{stream.height}: every frame needs the same size"
                    )
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                if stamps is not None:
                    t = next(stamps, None)
                    if t is None or round(t * 90000) <= last_pts:
                        raise ValueError(
                            f"times must give one increasing time per frame (frame {count})"
                        )
                    frame.pts = last_pts = round(t * 90000)
                    frame.time_base = Fraction(1, 90000)
                container.mux(stream.encode(frame))
                count += 1
            if count == 0:
                raise ValueError("no frames to write")
            container.mux(stream.encode(None))
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _even(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frames must be H×W×3 uint8 RGB arrays, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(rgb)
