"""Fixtures of the conformance suite: our outputs read by the tools that consume them.

Each consumer's version is printed in the pytest header (tests/conftest.py), so a failure names
what it ran against.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_gen"))
from dg_fixtures import Sample, copy_photos, populate

from data_gen.qalog.log import QALog


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Sample]:
    photos = copy_photos(tmp_path / "photos")
    with QALog.open(tmp_path / "log.sqlite") as log:
        yield populate(log, photos)
