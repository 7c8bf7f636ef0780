"""Desktop-app video benchmark (offscreen): from a key press to the frame on screen.

On a 10-minute 1080p H.264 clip (keyframe every 2 s; ``--quick``: 1 minute), made as
bench_video.py makes it (a 10 s segment encoded, then remuxed end to end):

1. open the clip until its first frame is painted (target < 1 s, issue 14);
2. next frame (`.`) in the middle of the clip, from the key to the new frame painted with a
   rectangle drawn on it (target < 50 ms a step), against the bare decode of the same frames by
   a VideoReader in this process (the floor: what is left is the app's own cost — composite,
   QImage, paint);
3. previous frame (`,`): stepping back decodes from the codec keyframe before;
4. a click on the timeline (a seek far away).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = 60
TARGET_MS = 50.0


def make_clip(folder: Path, minutes: int) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_video import make_segment, repeat_clip

    segment = folder / "segment.mp4"
    make_segment(segment, 1920, 1080, 300, 60, 8_000_000)
    clip = folder / "clip.mp4"
    repeat_clip(segment, clip, 6 * minutes)
    segment.unlink()
    return clip


def wait(app: Any, done: Callable[[], bool], timeout: float = 20.0) -> None:
    from PySide6.QtCore import QEventLoop

    end = time.perf_counter() + timeout
    while not done():
        # Sleep until an event comes, as the app's event loop does (a busy loop here would
        # take the GIL from the render thread that decodes).
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 5)
        if time.perf_counter() > end:
            raise TimeoutError("the frame did not arrive")


def main() -> None:
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import overlays as ov

    app = QApplication.instance() or QApplication([])
    from app.gui.mainwindow import MainWindow
    from app.gui.settings import Settings
    from overlays.video_io import VideoReader

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        minutes = 1 if "--quick" in sys.argv else 10
        t = time.perf_counter()
        clip = make_clip(folder, minutes)
        print(f"clip: {minutes} min, 1920×1080 H.264 (made in {time.perf_counter() - t:.0f} s)")
        window = MainWindow(
            Settings(db_path=str(folder / "log.sqlite"), model="", thumbnails=False),
            folder / "gui.json",
            load_model=False,
        )
        window.resize(1400, 900)
        window.show()
        canvas, video = window.canvas, window.video

        def painted_frame(index: int) -> Callable[[], bool]:
            def check() -> bool:
                frame = canvas.frame
                return (
                    video.shown_frame == index
                    and frame is not None
                    and frame.token == canvas.renderer.token
                    and canvas.paint_count > painted[0]
                )

            return check

        painted = [canvas.paint_count]
        t = time.perf_counter()
        window.studio.open_path(clip)
        wait(app, lambda: video.active)
        wait(app, painted_frame(0))
        open_ms = (time.perf_counter() - t) * 1000
        assert window.studio.doc is not None
        window.studio.doc.add(ov.Rectangle((400, 200, 900, 700)))
        count = video.reader.frame_count
        middle = count // 2 + 7  # not on a codec keyframe
        video.seek(middle)
        wait(app, painted_frame(middle))
        canvas.setFocus()

        def step(key: Qt.Key, target: int) -> float:
            painted[0] = canvas.paint_count
            t = time.perf_counter()
            QTest.keyClick(canvas, key)
            wait(app, painted_frame(target))
            return (time.perf_counter() - t) * 1000

        forward = [step(Qt.Key.Key_Period, middle + i) for i in range(1, STEPS + 1)]
        end = middle + STEPS
        backward = [step(Qt.Key.Key_Comma, end - i) for i in range(1, 21)]
        timeline = window.video_bar.timeline
        target = round(count * 0.9) + 11
        painted[0] = canvas.paint_count
        t = time.perf_counter()
        QTest.mouseClick(
            timeline, Qt.MouseButton.LeftButton, pos=QPointF(timeline.x_of(target), 8).toPoint()
        )
        target = timeline.frame_at(timeline.x_of(target))
        wait(app, painted_frame(video.frame))
        seek_ms = (time.perf_counter() - t) * 1000
        window.close()

        with VideoReader(clip) as reader:
            reader.frame(middle)
            decode = []
            for i in range(1, STEPS + 1):
                t = time.perf_counter()
                reader.frame(middle + i)
                decode.append((time.perf_counter() - t) * 1000)

    def stats(xs: list[float]) -> str:
        return f"median {statistics.median(xs):6.1f} ms  worst {max(xs):6.1f} ms"

    print(f"open to the first frame painted:     {open_ms:7.1f} ms")
    print(f"next frame (.), key → painted:       {stats(forward)}  (target < {TARGET_MS:g} ms)")
    print(f"previous frame (,), key → painted:   {stats(backward)}")
    print(f"timeline click (a seek, 90 % in):    {seek_ms:7.1f} ms")
    print(f"bare decode of the next frame:       {stats(decode)}  (the floor, this process)")
    ratio = statistics.median(forward) / max(statistics.median(decode), 1e-6)
    print(f"app cost over the bare decode (next frame, medians): ×{ratio:.1f}")
    verdict = "OK" if statistics.median(forward) < TARGET_MS else "OVER TARGET"
    print(f"frame step: {verdict}")


if __name__ == "__main__":
    main()
