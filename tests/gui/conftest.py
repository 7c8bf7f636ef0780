"""Fixtures of the desktop-app tests: a real main window offscreen, a real SQLite log in
tmp_path, copies of the sample photos, and the tiny random ViP-LLaVA."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A folder with the four sample photos (copied: the log stores absolute paths)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture
def make_window(qtbot: Any, tmp_path: Path) -> Iterator[Any]:
    """A factory of real main windows on a log and settings file in tmp_path."""
    from app.gui.mainwindow import MainWindow
    from app.gui.settings import Settings

    made: list[Any] = []

    def make(settings: Any = None, load_model: bool = False, **kw: Any) -> Any:
        if settings is None:
            settings = Settings(db_path=str(tmp_path / "log.sqlite"), model="", autosave_ms=100)
        window = MainWindow(settings, tmp_path / "gui.json", load_model=load_model, **kw)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        qtbot.waitExposed(window)
        made.append(window)
        return window

    yield make
    for window in made:
        if window.isVisible():
            window.close()


@pytest.fixture
def window(make_window: Any) -> Any:
    return make_window()


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path) -> Iterator[Any]:
    """The tiny random model, loaded once for the whole session."""
    from vip_model.hf import HFEngine

    engine = HFEngine(str(tiny_model_dir), device="cpu")
    yield engine
    engine.close()
