"""Desktop-app benchmark (offscreen): the four figures of the GUI issue, against labelme's.

1. frame time while drawing and dragging a rectangle on a 4000×3000 photo at fit zoom
   (target median ≤ 5 ms, worst ≤ 16 ms);
2. launch on a 10,000-image folder until the first image is painted and the list is filled
   (target ≤ 1 s), in a fresh process, with and without the Python start-up;
3. next image in that folder, 640×480 JPEGs, from the key to the new image painted (≤ 15 ms);
4. open a 4000×3000 JPEG to its first paint (≤ 150 ms), and to the exact composite;
5. the log, which the app reaches through its own log process: launch until the first image's
   log state (turns, draft) is there, and recording a finished answer / autosaving a draft from
   the call to the confirmation on the GUI thread, against the same writes made directly on a
   connection in this process (the floor);
6. a filter keystroke over the 10,000 names (name filter typed one letter at a time, then
   cleared), from setText to the list re-laid out (target < 50 ms), against a proxy whose
   per-row callback tests the name itself (the usual QSortFilterProxyModel way) in the same run;
7. quitting (window close, log writes finished) while a generation is stuck in the model for
   STUCK_S seconds, which the app used to wait for (target < 1 s).

labelme was measured on this machine class by the issue's author (it draws vector outlines
only; we show the exact model composite). It is not installed here: the ratios use those figures.
The synthetic folder is made in a temp dir: 100 distinct JPEGs, hard-linked to 10,000 names.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSortFilterProxyModel

ROOT = Path(__file__).resolve().parents[1]
LABELME = {"drag_median": 4.4, "drag_worst": 7.4, "launch": 2400.0, "next": 35.0, "open": 340.0}
TARGET = {"drag_median": 5.0, "drag_worst": 16.0, "launch": 1000.0, "next": 15.0, "open": 150.0}
N_FILES = 10_000
STUCK_S = 5.0

LAUNCH_CHILD = r"""
import sys, time
T0 = time.perf_counter()
import os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from app.gui import logproc
logproc.prestart()  # as app.gui.run() does: the log process boots while Qt loads
from pathlib import Path
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.gui.mainwindow import MainWindow
from app.gui.settings import Settings
T1 = time.perf_counter()
folder, db = Path(sys.argv[1]), Path(sys.argv[2])
w = MainWindow(Settings(db_path=str(db), model=""), db.with_suffix(".json"), load_model=False)
w.resize(1400, 900)
w.show()
w.open_folder(folder)
loop = QEventLoop()
state = {}
def check():
    if w.canvas.frame is not None and w.canvas.paint_count and "paint" not in state:
        state["paint"] = time.perf_counter()
    if not w.files.scanning and len(w.files.paths) == int(sys.argv[3]) and "list" not in state:
        state["list"] = time.perf_counter()
    if w.studio.state is not None and "log" not in state:
        state["log"] = time.perf_counter()
    if len(state) == 3:
        loop.quit()
w.canvas.painted.connect(check)
w.files.scan_finished.connect(lambda n: check())
w.studio.image_ready.connect(lambda s: check())
QTimer.singleShot(20000, loop.quit)
loop.exec()
end = max(state["paint"], state["list"])
def usage(pid):  # CPU ms and resident MB so far (Linux /proc; nan elsewhere)
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") * 1e3
        pages = int(open(f"/proc/{pid}/statm").read().split()[1])
        return f"{cpu:.0f} {pages * os.sysconf('SC_PAGE_SIZE') / 2**20:.0f}"
    except (OSError, TypeError, ValueError):
        return "nan nan"
print("usage", usage(os.getpid()), usage(w.writer.child_pid))
print(f"{(end - T0) * 1e3:.1f} {(end - T1) * 1e3:.1f} {(state['log'] - T1) * 1e3:.1f} "
      f"{w.proxy.rowCount()}")
w.close()
"""


def make_photos(tmp: Path) -> tuple[list[Path], Path]:
    from PIL import Image, ImageEnhance

    samples = sorted((ROOT / "assets" / "samples").glob("*.jpg"))
    photo = Image.open(samples[2]).convert("RGB")
    bigs = []
    for i, src in enumerate(samples[:2]):
        big = Image.open(src).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
        path = tmp / f"big{i}.jpg"
        big.save(path, quality=90)
        bigs.append(path)
    folder = tmp / "folder"
    folder.mkdir()
    distinct = []
    for i in range(100):
        im = Image.open(samples[i % len(samples)]).convert("RGB").resize((640, 480))
        im = ImageEnhance.Brightness(im).enhance(0.7 + 0.006 * i)
        path = folder / f"img_{i:05d}.jpg"
        im.save(path, quality=88)
        distinct.append(path)
    for i in range(100, N_FILES):
        os.link(distinct[i % 100], folder / f"img_{i:05d}.jpg")
    del photo
    return bigs, folder


def launch(
    folder: Path, tmp: Path, runs: int = 3
) -> tuple[list[float], list[float], list[float], list[list[float]]]:
    """Per run: ms to ready (with and without Python's start-up), ms to the first log state,
    and [CPU ms, MB resident] of the app and of its log process at that point."""
    cold, warm, logged, usage = [], [], [], []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i in range(runs):
        db = tmp / f"launch{i}.sqlite"
        out = subprocess.run(
            [sys.executable, "-c", LAUNCH_CHILD, str(folder), str(db), str(N_FILES)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        total, after_imports, log_state, _rows = out.stdout.split()[-4:]
        cold.append(float(total))
        warm.append(float(after_imports))
        logged.append(float(log_state))
        line = next(x for x in out.stdout.splitlines() if x.startswith("usage "))
        usage.append([float(v) for v in line.split()[1:]])
    return cold, warm, logged, usage


def log_writes(w: Any, app: Any, image: Path, tmp: Path, n: int = 40) -> dict[str, list[float]]:
    """Milliseconds from each log call of the app to its confirmation on the GUI thread, and
    the same writes made directly on a connection of this process (the floor)."""
    import overlays as ov
    from app.gui.writer import PendingTurn
    from data_gen.qalog.log import NewTurn, QALog

    prompts = [ov.Rectangle((10, 20, 200, 220))]

    def turn(i: int) -> Any:
        return NewTurn(0, prompts, f"What is {i}?", "A cup.", "tiny", "llava_v1", source="gui")

    def wait_for(flag: list[Any]) -> None:
        while not flag:
            app.processEvents()
            time.sleep(0.0002)

    out: dict[str, list[float]] = {"turn": [], "draft": [], "turn_direct": [], "draft_direct": []}
    image_id, session = w.studio.state.image.id, None
    for i in range(n):
        done: list[Any] = []
        t0 = time.perf_counter()
        w.writer.commit_turn(PendingTurn(image_id, session, turn(i), done.append, path=image))
        wait_for(done)
        out["turn"].append((time.perf_counter() - t0) * 1e3)
        session = done[0].session_id
        saved: list[Any] = []
        w.writer.status.connect(saved.append)
        t0 = time.perf_counter()
        w.writer.save_draft(image_id, prompts, f"draft {i}", session)
        wait_for(saved)
        out["draft"].append((time.perf_counter() - t0) * 1e3)
        w.writer.status.disconnect(saved.append)
    with QALog.open(tmp / "direct.sqlite") as log:
        direct_image = log.add_image(image).id
        direct_session = log.start_session(direct_image, source="gui")
        for i in range(n):
            t0 = time.perf_counter()
            t = turn(i)
            t.session_id = direct_session
            log.add_turn(t)
            log.turn(log.count())
            out["turn_direct"].append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            log.save_draft(direct_image, prompts, f"draft {i}", direct_session)
            out["draft_direct"].append((time.perf_counter() - t0) * 1e3)
    return out


def in_process(bigs: list[Path], folder: Path, tmp: Path) -> dict[str, list[float]]:
    from PySide6.QtCore import QEvent, QEventLoop, QPointF, Qt, QTimer
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from app.gui.mainwindow import MainWindow
    from app.gui.settings import Settings

    w = MainWindow(
        Settings(db_path=str(tmp / "bench.sqlite"), model=""), tmp / "g.json", load_model=False
    )
    w.resize(1400, 900)
    w.show()
    canvas = w.canvas
    app.processEvents()

    def run_until(
        start: Callable[[], object], done: Callable[[], bool], limit: float = 20
    ) -> float:
        """Call ``start``; return ms until ``done()`` holds right after a paint."""
        loop = QEventLoop()
        result: dict[str, float] = {}

        def painted() -> None:
            if "t" not in result and done():
                result["t"] = time.perf_counter()
                loop.quit()

        canvas.painted.connect(painted)
        QTimer.singleShot(int(limit * 1000), loop.quit)
        t0 = time.perf_counter()
        start()
        if "t" not in result:
            loop.exec()
        canvas.painted.disconnect(painted)
        if "t" not in result:
            raise RuntimeError("timed out")
        return (result["t"] - t0) * 1e3

    def settle() -> None:
        w.writer.wait()
        canvas.renderer.wait_idle()
        for _ in range(5):
            app.processEvents()

    def frame_of(token: int) -> Callable[[], bool]:
        return lambda: canvas.frame is not None and canvas.frame.token == token

    def painted_after(count: int) -> Callable[[], bool]:
        return lambda: canvas.paint_count > count

    out: dict[str, list[float]] = {"open": [], "open_exact": [], "drag": [], "next": []}

    # 4. open a 4000×3000 JPEG to first paint (alternating two files, so each is a new image)
    for i in range(6):
        path = bigs[i % 2]
        token = canvas.renderer.token + 1
        out["open"].append(run_until(partial(w.studio.show, path), frame_of(token)))
        t0 = time.perf_counter()
        while not (canvas.frame and canvas.frame.token == token and canvas.frame.exact):
            app.processEvents()
            time.sleep(0.001)
        out["open_exact"].append(out["open"][-1] + (time.perf_counter() - t0) * 1e3)
        settle()
    # 5. log writes, on the image just opened
    assert w.studio.path is not None
    out.update(log_writes(w, app, w.studio.path, tmp))
    # 1. drag a rectangle at fit zoom on the 4000×3000 photo
    w.select_tool("rectangle")
    vp = canvas.viewport()
    a, b = canvas.mapFromScene(QPointF(600, 500)), canvas.mapFromScene(QPointF(3400, 2500))

    def send(kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton) -> None:
        buttons = (
            Qt.MouseButton.LeftButton
            if kind != QEvent.Type.MouseButtonRelease
            else (Qt.MouseButton.NoButton)
        )
        event = QMouseEvent(
            kind, pos, vp.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(vp, event)

    for stroke in range(3):
        send(QEvent.Type.MouseButtonPress, QPointF(a), Qt.MouseButton.LeftButton)
        app.processEvents()
        steps = 120
        for i in range(1, steps + 1):
            f = i / steps
            height = (b.y() - a.y()) * f * (0.5 + stroke / 4)
            pos = QPointF(a.x() + (b.x() - a.x()) * f, a.y() + height)
            count = canvas.paint_count
            move = partial(send, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton)
            out["drag"].append(run_until(move, painted_after(count)))
        assert canvas.live.prompt is not None, "the drag did not draw a preview"
        send(QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.LeftButton)
        settle()
    out["prompts"] = [float(len(w.studio.doc.prompts))] if w.studio.doc else [0.0]
    # 3. next image in the 10,000-image folder
    w.open_folder(folder)
    while w.files.scanning or w.studio.path is None or w.studio.path.parent != folder:
        app.processEvents()
        time.sleep(0.002)
    settle()
    for _ in range(60):
        token = canvas.renderer.token + 1
        out["next"].append(run_until(w.actions_["next"].trigger, frame_of(token)))
        settle()
    out["filter"], out["filter_rowwise"] = filter_keystrokes(w, app)
    # 7. quit while a generation is stuck in the model for STUCK_S (the old close waited for it)
    from app.gui.threads import run_in_thread

    release = threading.Event()
    run_in_thread(release.wait, STUCK_S, owner=w.host, pool=w.host._pool)
    t0 = time.perf_counter()
    w.close()
    out["quit"] = [(time.perf_counter() - t0) * 1e3]
    release.set()
    return out


class RowwiseFilter(QSortFilterProxyModel):
    """The baseline: the name test in the per-row callback (one Python call per name)."""

    text = ""

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:
        source = self.sourceModel()
        return self.text in source.paths[row].name.lower()  # type: ignore[attr-defined]


def filter_keystrokes(w: Any, app: Any) -> tuple[list[float], list[float]]:
    """ms per keystroke in the window's name filter, and with the per-row baseline proxy."""
    from PySide6.QtWidgets import QListView

    typed = ["i", "im", "img", "img_", "img_0", "img_00", "img_005", "img_0050", "img_005", ""]
    ours = []
    for _ in range(3):
        for text in typed:
            t0 = time.perf_counter()
            w.filter_text.setText(text)
            app.processEvents()
            ours.append((time.perf_counter() - t0) * 1e3)
    base = RowwiseFilter()
    base.setSourceModel(w.files)
    view = QListView()
    view.setUniformItemSizes(True)
    view.setModel(base)
    view.show()
    app.processEvents()
    rowwise = []
    for _ in range(3):
        for text in typed:
            t0 = time.perf_counter()
            base.beginFilterChange()
            base.text = text
            base.endFilterChange(QSortFilterProxyModel.Direction.Rows)
            app.processEvents()
            rowwise.append((time.perf_counter() - t0) * 1e3)
    view.close()
    return ours, rowwise


def row(name: str, value: float, key: str, unit: str = "ms") -> str:
    ratio = LABELME[key] / value if value else float("inf")
    ok = "yes" if value <= TARGET[key] else "NO"
    return (
        f"{name:<52} {value:8.1f} {unit}  target ≤ {TARGET[key]:g}: {ok:<3}  "
        f"labelme {LABELME[key]:g} ({ratio:.1f}× {'faster' if ratio >= 1 else 'slower'})"
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        t = time.perf_counter()
        bigs, folder = make_photos(tmp)
        made = time.perf_counter() - t
        print(f"made 2 × 4000×3000 JPEGs and a {N_FILES}-file folder in {made:.1f} s")
        cold, warm, logged, usage = launch(folder, tmp)
        figures = in_process(bigs, folder, tmp)
    drag, step, opened = figures["drag"], figures["next"], figures["open"]
    med = statistics.median
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (noisy under load)")
    print(row("drag a rectangle, 4000×3000 at fit: median frame", med(drag), "drag_median"))
    print(row("drag a rectangle, 4000×3000 at fit: worst frame", max(drag), "drag_worst"))
    p95 = sorted(drag)[int(0.95 * len(drag))]
    print(f"{'':<52} p95 {p95:.1f} ms over {len(drag)} frames")
    print(row("launch on 10,000 images, process start → ready", med(cold), "launch"))
    print(row("launch on 10,000 images, window → ready", med(warm), "launch"))
    print(row("next image (640×480 JPEG), key → painted: median", med(step), "next"))
    print(f"{'':<52} worst {max(step):.1f} ms over {len(step)} steps")
    print(row("open a 4000×3000 JPEG → first paint: median", med(opened), "open"))
    exact = med(figures["open_exact"])
    print(f"{'':<52} exact full-resolution composite after {exact:.0f} ms (background)")
    print(f"{'launch on 10,000 images, window → first log state':<52} {med(logged):8.1f} ms")
    app_cpu, app_mb, log_cpu, log_mb = (med(u[i] for u in usage) for i in range(4))
    print(
        f"{'':<52} CPU at ready: app {app_cpu:.0f} ms + log process {log_cpu:.0f} ms; "
        f"resident: app {app_mb:.0f} MB + log process {log_mb:.0f} MB"
    )
    for key, what in (("turn", "record a finished answer"), ("draft", "autosave a draft")):
        app_ms, direct_ms = med(figures[key]), med(figures[f"{key}_direct"])
        print(
            f"{what + ', call → confirmed: median':<52} {app_ms:8.1f} ms  "
            f"direct on a connection {direct_ms:.1f} ms ({app_ms / direct_ms:.1f}×), "
            f"worst {max(figures[key]):.1f} ms"
        )
    ours, rowwise = med(figures["filter"]), med(figures["filter_rowwise"])
    print(
        f"{'filter keystroke over 10,000 names: median':<52} {ours:8.1f} ms  target < 50: "
        f"{'yes' if ours < 50 else 'NO':<3}  per-row callback {rowwise:.1f} ms "
        f"({rowwise / ours:.1f}×), worst {max(figures['filter']):.1f} ms"
    )
    quit_ms = figures["quit"][0]
    print(
        f"{'quit while a generation is stuck in the model':<52} {quit_ms:8.1f} ms  target < 1000: "
        f"{'yes' if quit_ms < 1000 else 'NO':<3}  waiting for it: {STUCK_S * 1e3:.0f} ms "
        f"({STUCK_S * 1e3 / quit_ms:.0f}×)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
