"""`export(on_progress=...)`: the desktop app's progress bar and Cancel, on a real log."""

from __future__ import annotations

from pathlib import Path

import pytest
from dg_fixtures import Sample

from data_gen.base import ExportOptions
from data_gen.export import export


class Stop(Exception):
    pass


def test_progress_counts_every_turn_written(sample: Sample, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    out = tmp_path / "out"
    summary = export(
        sample.log,
        ExportOptions(format="llava-rendered", out=out, workers=1),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    total = seen[0][1]
    assert seen[0] == (0, total) and total is not None and total >= summary.turns
    counts = [done for done, _ in seen]
    assert counts == sorted(counts) and all(t == total for _, t in seen)
    assert counts[-1] == total  # ends full, duplicates dropped along the way included


def test_an_exception_from_progress_stops_and_leaves_nothing(
    sample: Sample, tmp_path: Path
) -> None:
    calls: list[int] = []

    def stop_at_second(done: int, total: int | None) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise Stop

    out = tmp_path / "out"
    with pytest.raises(Stop):
        export(sample.log, ExportOptions(format="vip-llava", out=out), on_progress=stop_at_second)
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # nor a staging folder
