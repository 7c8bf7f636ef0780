"""The `sample` fixture: a real log filled with the sample photos (see dg_fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dg_fixtures import Sample, copy_photos, populate

from data_gen.qalog.log import QALog


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Sample]:
    photos = copy_photos(tmp_path / "photos")
    with QALog.open(tmp_path / "log.sqlite") as log:
        yield populate(log, photos)
