"""Desktop-app video benchmark (offscreen): from a key press to the frame on screen.

1. open a clip (File → Open path) until its first frame is painted;
2. next frame (`.`), from the key to the new frame painted, with a rectangle drawn on it (target
   < 50 ms a step, issue 14), against the bare decode of the same frames by a VideoReader in this
   process (the floor: what is left is the app's own cost — composite, QImage, paint);
3. previous frame (`,`): stepping back decodes from the codec keyframe before;
4. a click on the timeline 30 % further on (a seek).

The clip is generated in a temp dir with overlays.video_io.write_video (H.264, 1280×720, 30 fps,
keyframe every 250 frames: the encoder's default GOP, as phone and camera clips have).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

W, H, FPS, COUNT = 1280, 720, 30.0, 300
STEPS = 60
TARGET_MS = 50.0


def make_clip(path: Path) -> Path:
    from overlays.video_io import write_video

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (H // 8, W // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)

    def frames() -> Any:
        for i in range(COUNT):
            frame = np.roll(base, 4 * i, axis=1)
            frame[100:300, 200 + i : 400 + i] = (240, 200, 40)
            yield frame

    write_video(path, frames(), FPS)
    return path


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
        t = time.perf_counter()
        clip = make_clip(folder / "clip.mp4")
        print(f"clip: {W}×{H}, {COUNT} frames at {FPS:g} fps ({time.perf_counter() - t:.1f} s)")
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
        window.studio.doc.add(ov.Rectangle((200, 100, 400, 300)))
        canvas.setFocus()

        def step(key: Qt.Key, target: int) -> float:
            painted[0] = canvas.paint_count
            t = time.perf_counter()
            QTest.keyClick(canvas, key)
            wait(app, painted_frame(target))
            return (time.perf_counter() - t) * 1000

        forward = [step(Qt.Key.Key_Period, i) for i in range(1, STEPS + 1)]
        backward = [step(Qt.Key.Key_Comma, STEPS - i) for i in range(1, 21)]
        timeline = window.video_bar.timeline
        target = round(COUNT * 0.7)
        painted[0] = canvas.paint_count
        t = time.perf_counter()
        QTest.mouseClick(
            timeline, Qt.MouseButton.LeftButton, pos=QPointF(timeline.x_of(target), 8).toPoint()
        )
        wait(app, painted_frame(target))
        seek_ms = (time.perf_counter() - t) * 1000
        window.close()

        with VideoReader(clip) as reader:
            reader.frame(0)
            decode = []
            for i in range(1, STEPS + 1):
                t = time.perf_counter()
                reader.frame(i)
                decode.append((time.perf_counter() - t) * 1000)

    def stats(xs: list[float]) -> str:
        return f"median {statistics.median(xs):6.1f} ms  worst {max(xs):6.1f} ms"

    print(f"open to the first frame painted:     {open_ms:7.1f} ms")
    print(f"next frame (.), key → painted:       {stats(forward)}  (target < {TARGET_MS:g} ms)")
    print(f"previous frame (,), key → painted:   {stats(backward)}")
    print(f"timeline click to frame {target}:        {seek_ms:7.1f} ms")
    print(f"bare decode of the next frame:       {stats(decode)}  (the floor, this process)")
    ratio = statistics.median(forward) / max(statistics.median(decode), 1e-6)
    print(f"app cost over the bare decode (next frame, medians): ×{ratio:.1f}")
    verdict = "OK" if statistics.median(forward) < TARGET_MS else "OVER TARGET"
    print(f"frame step: {verdict}")


if __name__ == "__main__":
    main()
