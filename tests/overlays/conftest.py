"""Fixtures for the `overlays` tests: real images, made in memory or written to tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "samples"

GREY = (100, 100, 100)


@pytest.fixture
def flat() -> Callable[..., Image.Image]:
    """A factory of flat RGB images: ``flat(w, h, color=GREY)``."""

    def make(w: int, h: int, color: tuple[int, int, int] = GREY) -> Image.Image:
        return Image.new("RGB", (w, h), color)

    return make


@pytest.fixture
def noise() -> Callable[..., Image.Image]:
    """A factory of seeded random RGB images: every pixel differs, so any stray write shows."""

    def make(w: int, h: int, seed: int = 0) -> Image.Image:
        rng = np.random.default_rng(seed)
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")

    return make


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A real photograph shipped with the project (600×400)."""
    with Image.open(ASSETS / "coffee.jpg") as im:
        return im.convert("RGB")
