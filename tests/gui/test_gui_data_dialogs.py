"""Export, import and report dialogs of the real window: the same data_gen calls as the CLI
(in a child process), progress, Cancel leaving nothing behind, the CLI's refusals word for word,
and the summary at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PySide6.QtCore import Qt

import overlays as ov
from app.cli import main as cli
from app.gui.settings import Settings
from data_gen.qalog.log import NewTurn, QALog


def _ask(log: QALog, session: int, prompts: list[ov.Prompt], question: str, answer: str) -> int:
    text, refs = ov.compose_question(question, prompts)
    turn = NewTurn(
        session_id=session,
        prompts=prompts,
        question=text,
        question_refs=refs,
        answer=answer,
        model="vip-llava-7b",
        template="llava_v1",
        source="gui",
    )
    return log.add_turn(turn)


@pytest.fixture
def logged(tmp_path: Path, samples: Path) -> Path:
    """A log with four turns on two of the sample photos."""
    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        for name, box in (("coffee.jpg", (180, 20, 420, 230)), ("chelsea.jpg", (40, 40, 200, 200))):
            image = log.add_image(samples / name)
            session = log.start_session(image.id, source="gui")
            prompts: list[ov.Prompt] = [ov.Rectangle(box)]
            _ask(log, session, prompts, "What is <region0>?", "Something.")
            _ask(log, session, prompts, "What colour is <region0>?", "Brown.")
    return db


@pytest.fixture
def win(make_window: Any, logged: Path) -> Any:
    return make_window(Settings(db_path=str(logged), model="", autosave_ms=100))


def _run(qtbot: Any, dialog: Any, timeout: int = 60_000) -> None:
    qtbot.mouseClick(dialog.run_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=timeout)


def _cli_error(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: ")
    return line.removeprefix("Error: ")


def test_export_writes_the_dataset_with_progress_and_a_summary(
    qtbot: Any, win: Any, tmp_path: Path, samples: Path
) -> None:
    (samples / "chelsea.jpg").unlink()  # its two turns are left out, with the reason
    dialog = win.show_export()
    dialog.format.setCurrentText("llava-rendered")
    out = tmp_path / "dataset"
    dialog.out.setText(str(out))
    dialog.val.setValue(0.5)
    seen: list[tuple[int, int | None]] = []
    original = dialog._progress
    dialog._progress = lambda v: (seen.append(v), original(v))  # type: ignore[method-assign]
    with qtbot.waitSignal(dialog.finished_job, timeout=60_000):
        qtbot.mouseClick(dialog.run_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running)
    assert seen and seen[-1] == (4, 4)
    assert dialog.progress.value() == dialog.progress.maximum()
    text = dialog.summary.toPlainText()
    assert text.startswith("llava-rendered → ") and "from 2 turns in 1 conversations" in text
    assert "left out: 2 × " in text and "chelsea.jpg" in text
    assert dialog.outcome.data["turns"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["turns"] == 2 and summary["options"]["val_fraction"] == 0.5
    assert dialog.run_btn.isEnabled() and dialog.close_btn.isEnabled()


def test_export_refusals_are_the_cli_messages(
    qtbot: Any, win: Any, tmp_path: Path, logged: Path
) -> None:
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    dialog = win.show_export()
    dialog.format.setCurrentText("vip-llava")
    dialog.out.setText(str(out))
    _run(qtbot, dialog)
    expected = _cli_error("export", "--db", str(logged), "--format", "vip-llava", "--out", str(out))
    assert dialog.error == expected and "already exists" in expected
    assert expected in dialog.status.text()
    assert (out / "keep.txt").read_text() == "mine"
    # An option the export refuses is said before anything runs, as the CLI says it.
    dialog.augment.setValue(2)
    dialog.overwrite.setChecked(True)
    _run(qtbot, dialog)
    assert "--augment does not apply to vip-llava" in (dialog.error or "")
    # Overwrite: refused for a folder that is not an export (the CLI's rule and words).
    dialog.augment.setValue(0)
    _run(qtbot, dialog)
    refused = _cli_error(
        "export", "--db", str(logged), "--format", "vip-llava", "--out", str(out), "--overwrite"
    )
    assert dialog.error == refused and (out / "keep.txt").exists()


def test_cancel_stops_the_export_and_leaves_nothing(qtbot: Any, win: Any, tmp_path: Path) -> None:
    dialog = win.show_export()
    out = tmp_path / "cancelled"
    dialog.out.setText(str(out))
    qtbot.mouseClick(dialog.run_btn, Qt.MouseButton.LeftButton)
    assert dialog.cancel_btn.isEnabled() and not dialog.close_btn.isEnabled()
    qtbot.mouseClick(dialog.cancel_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert dialog.outcome is None and dialog.error is None
    assert "stopped: nothing was written" in dialog.status.text()
    assert not out.exists() and not list(tmp_path.glob(".cancelled*"))


def test_import_then_the_cli_refusal_of_a_second_import(
    qtbot: Any, win: Any, samples: Path, logged: Path
) -> None:
    file = samples / "coffee.json"
    file.write_text(
        json.dumps(
            {
                "imagePath": "coffee.jpg",
                "imageWidth": 600,
                "imageHeight": 400,
                "shapes": [
                    {"label": "cup", "shape_type": "rectangle", "points": [[420, 230], [180, 20]]}
                ],
            }
        )
    )
    dialog = win.show_import()
    dialog.format.setCurrentText("labelme")
    dialog.file.setText(str(file))
    with qtbot.waitSignal(dialog.finished_job, timeout=60_000):
        qtbot.mouseClick(dialog.run_btn, Qt.MouseButton.LeftButton)
        assert not dialog.cancel_btn.isEnabled()  # one transaction: not stopped half-way
    qtbot.waitUntil(lambda: not dialog.running)
    assert dialog.summary.toPlainText().startswith("imported 1 regions on 1 images")
    with QALog.open(logged) as log:
        assert [r.label for r in log.iter_regions()] == ["cup"]
    _run(qtbot, dialog)
    expected = _cli_error("import", "--db", str(logged), "--format", "labelme", str(file))
    assert dialog.error == expected and "pass --again" in expected


def test_report_shows_the_counts_and_the_figure(
    qtbot: Any, win: Any, tmp_path: Path, samples: Path, logged: Path
) -> None:
    dialog = win.show_report()
    plot = tmp_path / "report.png"
    dialog.plot.setText(str(plot))
    _run(qtbot, dialog)
    assert dialog.error is None, dialog.error
    text = dialog.summary.toPlainText()
    assert "4" in text and f"plot: {plot}" in text
    assert plot.is_file() and dialog.figure.isVisible()
    # A figure path that is one of the log's images: refused, in the CLI's words.
    photo = samples / "coffee.jpg"
    before = photo.read_bytes()
    dialog.plot.setText(str(photo))
    _run(qtbot, dialog)
    expected = _cli_error("report", "--db", str(logged), "--plot", str(photo))
    assert dialog.error == expected and "source image of the log" in expected
    assert photo.read_bytes() == before


def test_the_job_process_loads_no_qt() -> None:
    """What the child runs (the CLI's log opening and the data_gen calls) never imports Qt:
    it is a plain Python process, as the log process is."""
    code = (
        "import sys; from app.gui.datajobs import child_main, run_job, ExportJob; "
        "import app.cmd_log, data_gen.export, data_gen.importers, data_gen.report; "
        "qt = {m.split('.')[0] for m in sys.modules if m.startswith(('PySide', 'shiboken'))}; "
        "print(sorted(qt))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_closing_the_window_cancels_a_running_export(qtbot: Any, win: Any, tmp_path: Path) -> None:
    from PySide6.QtCore import QThreadPool

    dialog = win.show_export()
    out = tmp_path / "closed"
    dialog.out.setText(str(out))
    dialog.run()
    assert win.background_busy()  # the app's exit will not wait for it
    win.close()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=30_000)
    assert not out.exists() and not list(tmp_path.glob(".closed*"))


def test_the_window_imports_the_export_machinery_only_when_a_dialog_opens() -> None:
    """Launch stays light: the dialogs' data_gen imports (OpenCV, multiprocessing, the
    importers) and PyAV (the first video) load on first use, not with the window."""
    code = (
        "import sys; import app.gui.mainwindow; "
        "print(sorted(m for m in ('cv2', 'av', 'multiprocessing', 'data_gen.importers', "
        "'data_gen.export', 'app.gui.dialogs_data') if m in sys.modules))"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
