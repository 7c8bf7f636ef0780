"""Fixtures of the conformance suite: our outputs read by the tools that consume them.

Each consumer's version is printed in the pytest header, so a failure names what it ran against.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_gen"))
from dg_fixtures import Sample, copy_photos, populate

from app.log import QALog

#: The consumers these tests load our outputs with (absent ones skip their tests).
CONSUMERS = ("openai", "datasets", "trl", "transformers", "torch")


def pytest_report_header() -> list[str]:
    versions = []
    for name in CONSUMERS:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        "consumers: " + ", ".join(versions),
        "trainer contracts from: mu-cai/ViP-LLaVA ab4e364, hiyouga/LLaMA-Factory parser.py / "
        "converter.py, modelscope/ms-swift dataset preprocessor (see each test module)",
    ]


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Sample]:
    photos = copy_photos(tmp_path / "photos")
    with QALog.open(tmp_path / "log.sqlite") as log:
        yield populate(log, photos)
