"""Editing benchmark (offscreen): frame times of the select tool's drags on a 4000×3000 photo.

Each figure is the time from a mouse event sent to the canvas to its next paint finished
(bench_gui.py's method), at fit zoom, over 3 × 120 moves:

1. drawing a rectangle (bench_gui.py item 1, labelme 4.4 ms median): must not get slower;
2. moving a whole 4,000-vertex mask (what the app did before vertex editing): the baseline;
3. dragging one vertex of that mask (its handles shown near the pointer only);
4. hovering (no button) over that selected mask: the handles near the pointer follow it;
5. moving a group of 20 selected rectangles.

``--old`` runs items 1 and 2 alone: they also run on code older than vertex editing
(``PYTHONPATH=<an older checkout>``), for a before/after on the same machine.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
N_VERTICES = 4000
GROUP = 20
MOVES = 120


def tri(f: float) -> float:
    """0 → 1 → 0 as ``f`` goes 0 → 1: a stroke out and back, in even steps."""
    return 1 - abs(2 * f - 1)


def make_photo(tmp: Path) -> Path:
    from PIL import Image

    src = sorted((ROOT / "assets" / "samples").glob("*.jpg"))[0]
    path = tmp / "big.jpg"
    Image.open(src).convert("RGB").resize((4000, 3000)).save(path, quality=90)
    return path


def measure(old: bool) -> dict[str, list[float]]:
    from PySide6.QtCore import QEvent, QEventLoop, QPointF, Qt, QTimer
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    import overlays as ov

    app = QApplication.instance() or QApplication([])
    from app.gui.mainwindow import MainWindow
    from app.gui.settings import Settings

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        photo = make_photo(tmp)
        w = MainWindow(
            Settings(db_path=str(tmp / "bench.sqlite"), model=""), tmp / "g.json", load_model=False
        )
        w.resize(1400, 900)
        w.show()
        canvas = w.canvas
        w.studio.show(photo)
        while not (canvas.frame is not None and canvas.frame.exact and w.studio.doc is not None):
            app.processEvents()
            time.sleep(0.002)
        vp = canvas.viewport()

        def settle() -> None:
            w.writer.wait()
            canvas.renderer.wait_idle()
            for _ in range(5):
                app.processEvents()

        def frame(send: Callable[[], None]) -> float:
            """ms from ``send`` to the canvas's next paint."""
            loop, result = QEventLoop(), {}
            count = canvas.paint_count

            def painted() -> None:
                if "t" not in result and canvas.paint_count > count:
                    result["t"] = time.perf_counter()
                    loop.quit()

            canvas.painted.connect(painted)
            QTimer.singleShot(20_000, loop.quit)
            t0 = time.perf_counter()
            send()
            if "t" not in result:
                loop.exec()
            canvas.painted.disconnect(painted)
            if "t" not in result:
                raise RuntimeError("no paint within 20 s")
            return (result["t"] - t0) * 1e3

        def event(kind: QEvent.Type, x: float, y: float, held: bool) -> Callable[[], None]:
            pos = QPointF(canvas.mapFromScene(QPointF(x, y)))
            left = Qt.MouseButton.LeftButton
            button = left if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
            buttons = left if held else Qt.MouseButton.NoButton
            ev = QMouseEvent(
                kind, pos, vp.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
            )
            return lambda: QApplication.sendEvent(vp, ev)

        def handled(send: Callable[[], None]) -> float:
            """ms from ``send`` to every event it caused handled (a hover may paint nothing)."""
            t0 = time.perf_counter()
            send()
            app.processEvents()
            return (time.perf_counter() - t0) * 1e3

        def stroke(path: Callable[[float, int], tuple[float, float]], press: bool) -> list[float]:
            """3 strokes of MOVES steps, each several screen pixels (a move that lands on
            the same screen pixel changes nothing and paints nothing)."""
            times = []
            timer = frame if press else handled
            for n in range(3):
                x, y = path(0.0, n)
                if press:
                    event(QEvent.Type.MouseButtonPress, x, y, True)()
                    app.processEvents()
                for i in range(1, MOVES + 1):
                    x, y = path(i / MOVES, n)
                    times.append(timer(event(QEvent.Type.MouseMove, x, y, press)))
                if press:
                    event(QEvent.Type.MouseButtonRelease, x, y, False)()
                settle()
            return times

        out: dict[str, list[float]] = {}
        w.select_tool("rectangle")
        out["rectangle"] = stroke(
            lambda f, n: (600 + 2800 * f, 500 + 2000 * f * (0.5 + n / 4)), True
        )
        doc = w.studio.doc
        assert doc is not None
        doc.clear()
        ring = tuple(
            (
                2000 + 1200 * math.cos(2 * math.pi * i / N_VERTICES),
                1500 + 1000 * math.sin(2 * math.pi * i / N_VERTICES),
            )
            for i in range(N_VERTICES)
        )
        doc.add(ov.Mask(polygons=(ring,)))
        w.select_tool("select")
        settle()
        # 2. the whole mask moves (grabbed inside), out and back (each stroke ends where it began)
        out["mask_move"] = stroke(lambda f, n: (2000 + 900 * tri(f), 1500 + 600 * tri(f) * n), True)
        if old:
            w.close()
            return out
        # 3. one vertex: grabbed on the outline where the mask is now, dragged outwards
        mask = doc.prompts[0]
        assert isinstance(mask, ov.Mask)
        x0, y0 = mask.polygons[0][0]
        out["vertex"] = stroke(lambda f, n: (x0 + 800 * tri(f), y0 - 400 * tri(f) * n), True)
        assert len(doc.prompts[0].polygons[0]) == N_VERTICES
        mask = doc.prompts[0]
        x1, y1 = mask.polygons[0][N_VERTICES // 4]
        # 4. hovering along the outline: the handles near the pointer follow it
        out["hover"] = stroke(lambda f, n: (x1 - 2000 * f, y1 + 30 * math.sin(8 * f)), False)
        event(QEvent.Type.MouseMove, x1, y1, False)()  # back on the outline: handles near it
        app.processEvents()
        shown = len(canvas.selection.dots)
        # 5. a group of 20 rectangles, all selected, dragged by one of them
        doc.clear()
        for i in range(GROUP):
            x, y = 300 + (i % 5) * 700, 300 + (i // 5) * 650
            doc.add(ov.Rectangle((x, y, x + 400, y + 350)))
        doc.select_many(range(GROUP))
        settle()
        out["group"] = stroke(lambda f, n: (500 + 900 * tri(f), 450 + 600 * tri(f) * n), True)
        assert len(doc.prompts) == GROUP and doc.selected_indices() == tuple(range(GROUP))
        out["handles"] = [float(shown)]
        w.close()
    return out


def main() -> int:
    old = "--old" in sys.argv
    figures = measure(old)
    med = statistics.median

    def line(what: str, key: str, extra: str = "") -> None:
        times = figures[key]
        p95 = sorted(times)[int(0.95 * len(times))]
        print(
            f"{what:<52} median {med(times):6.1f} ms  p95 {p95:6.1f}  worst {max(times):6.1f}"
            + extra
        )

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (noisy under load)")
    line("draw a rectangle, 4000×3000 at fit", "rectangle", "  (labelme 4.4 / worst 7.4)")
    base = med(figures["mask_move"])
    line(f"move a whole {N_VERTICES}-vertex mask (baseline)", "mask_move")
    if old:
        return 0
    ratio = med(figures["vertex"]) / base
    line("drag one vertex of it", "vertex", f"  ({ratio:.2f}× the baseline)")
    shown = int(figures["handles"][0])
    line("hover over it, selected: event → handled", "hover", f"  ({shown} handles shown on it)")
    line(f"move a group of {GROUP} rectangles", "group")
    return 0


if __name__ == "__main__":
    sys.exit(main())
