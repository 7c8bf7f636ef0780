"""Model loading shows real progress (weight files, bytes, tensors loaded) rather than an
indeterminate bar: with the real tiny model, through transformers' own loading loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import app.gui.load_progress as load_progress
from app.gui.load_progress import LoadProgress, weight_files
from app.gui.settings import Settings
from app.gui.workers import load_engine
from vip_model.engine_spec import EngineSpec


def test_load_engine_reports_files_bytes_then_every_tensor(
    tiny_model_dir: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(load_progress, "REPORT_EVERY_S", 0.0)
    seen: list[LoadProgress] = []
    work = load_engine(EngineSpec(model=str(tiny_model_dir), device="cpu"), seen.append)
    try:
        while True:
            next(work)
    except StopIteration as stop:
        engine, _info = stop.value
    engine.close()
    files = weight_files(tiny_model_dir)
    assert [p.name for p in files] == ["model.safetensors"]
    size = files[0].stat().st_size
    first, last = seen[0], seen[-1]
    assert (first.files, first.total_bytes, first.total) == (1, size, 0)
    assert first.text() == "reading the checkpoint: 2.3 MB in 1 file"
    assert last.total > 100 and last.done == last.total and last.fraction == 1.0
    counts = [p.done for p in seen[1:]]
    assert counts == list(range(1, last.total + 1))  # every tensor, in order
    assert last.text() == f"{last.total}/{last.total} tensors · ≈2.3/2.3 MB · 1 file"


def test_the_window_shows_a_determinate_bar_while_the_model_loads(
    qtbot: Any, make_window: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(db_path=str(tmp_path / "log.sqlite"), model=str(tiny_model_dir))
    window = make_window(settings.with_changes(device="cpu"))
    bars: list[tuple[int, int, str]] = []
    bar = window.statusbar.progress

    def shown(_progress: LoadProgress) -> None:  # after the status bar took it
        bars.append((bar.maximum(), bar.value(), window.statusbar.model.text()))

    window.host.load_progress.connect(shown)
    with qtbot.waitSignal(
        window.host.state_changed, timeout=60_000, check_params_cb=lambda s, d: s == "ready"
    ):
        window.load_model()
    assert bars, "no progress was shown while loading"
    assert bars[0][0] == 1000 and "2.3 MB in 1 file" in bars[0][2]
    assert bars[-1][:2] == (1000, 1000) and "tensors" in bars[-1][2]
    assert bar.maximum() == 0 or not bar.isVisible()  # back to a busy bar, hidden when ready


def test_no_weight_files_no_size() -> None:
    assert weight_files(None) == [] and weight_files(Path("/nonexistent")) == []
    assert LoadProgress(0, 0).text() == "reading the checkpoint: 0.0 MB in 0 files"
    big = LoadProgress(3, 14_200_000_000, done=1, total=4)
    assert big.text() == "1/4 tensors · ≈3.3/13.2 GB · 3 files"
