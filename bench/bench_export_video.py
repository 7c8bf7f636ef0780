"""Video export benchmark: burned-in clip frames per second with every core vs one worker.

A 20 s 640×360 30 fps clip of a textured square gliding across the frame (made with PyAV), and
a log of 48 questions asked at moments spread over it, each with the square's stored track (a
keyframe every second, as the desktop app saves them). `llama-factory-video` is exported at
2 fps with 4 s of context either side (up to 17 frames per clip: decode the source frames, draw
the tracked prompt on each, encode with libx264), with one worker (x264 on its own threads)
and with one process per core (`--workers 0`, one x264 thread each); `streaming` (one
timeline over the 48 answers) once. Frames/s counts the frames written into clips; the ratios
are measured in the same run on this machine, as is x264's "medium" preset against ours.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import data_gen.export_video_clips as clips_mod
import overlays as ov
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.parallel import default_workers
from data_gen.qalog.log import NewTurn, QALog
from data_gen.qalog.log_video import frame_image
from overlays.tracks import Track
from overlays.video_io import VideoReader, write_video

W, H, FPS, SECONDS = 640, 360, 30, 20
ASKS = 48


def square(i: int) -> tuple[float, float, float, float]:
    x = 20 + (W - 140) * i / (FPS * SECONDS)
    y = 60 + 80 * np.sin(i / 40)
    return (x, y, x + 100, y + 100)


def make_clip(path: Path) -> None:
    rng = np.random.default_rng(0)
    background = rng.integers(20, 90, (H, W, 3), dtype=np.uint8)

    def frames():  # type: ignore[no-untyped-def]
        for i in range(FPS * SECONDS):
            frame = background.copy()
            x1, y1, x2, y2 = (round(v) for v in square(i))
            frame[y1:y2, x1:x2] = (240, 200, 40)
            yield frame

    write_video(path, frames(), FPS)


def build_log(folder: Path) -> Path:
    clip = folder / "glide.mp4"
    make_clip(clip)
    db = folder / "log.sqlite"
    keys = [*range(0, FPS * SECONDS, FPS), FPS * SECONDS - 1]
    track = Track(keyframes={i: ov.Rectangle(square(i)) for i in keys})
    with QALog.open(db) as log, VideoReader(clip) as reader:
        info = reader.info
        first = None
        for n in range(ASKS):
            frame = round((n + 0.5) * reader.frame_count / ASKS)
            found = track.prompt_at(frame)
            assert found is not None
            prompts = [found[0]]
            question, refs = ov.compose_question("Where is <region0> going?", prompts)
            turn = NewTurn(0, prompts, question, f"Answer {n}.", "m", "llava_v1", "batch", refs)
            recorded = log.record_turn(
                turn,
                image=frame_image(info, frame, reader.frame(frame)),
                video=info,
                frame_index=frame,
                frame_time=reader.time_of(frame),
            )
            first = first or recorded.session_id
        video = log.video_by_path(clip)
        assert video is not None
        log.save_track(video.id, 0, track, session_id=first)
    return db


def run(db: Path, out: Path, fmt: str, workers: int) -> tuple[float, int, int]:
    with QALog.open(db) as log:
        started = time.perf_counter()
        summary = export(
            log,
            ExportOptions(
                format=fmt, out=out, workers=workers, video_fps=2.0, context=4.0, overwrite=True
            ),
        )
        seconds = time.perf_counter() - started
    return seconds, summary.images.get("clip frames", 0), summary.images.get("clips", 0)


def main() -> int:
    cores = default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        db = build_log(folder)
        print(
            f"setup: {FPS * SECONDS}-frame {W}×{H} clip + {ASKS} asks in "
            f"{time.perf_counter() - started:.1f} s"
        )
        results = {}
        for workers in sorted({1, cores}):
            out = folder / f"lfv{workers}"
            seconds, frames, clips = run(db, out, "llama-factory-video", workers)
            results[workers] = frames / seconds
            label = " (--workers 0)" if workers == cores else ""
            print(
                f"llama-factory-video, {workers} worker(s){label}: {clips} clips, {frames} "
                f"frames in {seconds:.2f} s = {frames / seconds:.1f} frames/s "
                f"({clips / seconds:.2f} clips/s)"
            )
        seconds, frames, clips = run(db, folder / "stream", "streaming", cores)
        print(f"streaming, {cores} worker(s): {clips} clip of {frames} frames in {seconds:.2f} s")
        print(f"every core ({cores} workers) vs 1 worker: {results[cores] / results[1]:.2f}×")
        # The encoder preset: x264's default "medium" against ours, one worker (in-process).
        ours = clips_mod.CLIP_PRESET
        clips_mod.CLIP_PRESET = "medium"
        try:
            seconds, frames, _ = run(db, folder / "medium", "llama-factory-video", 1)
        finally:
            clips_mod.CLIP_PRESET = ours
        print(
            f"x264 preset medium, 1 worker: {frames / seconds:.1f} frames/s; {ours}: "
            f"{results[1] / (frames / seconds):.2f}× that"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
