"""Fixtures for the `vip_model` tests: a resident engine on the tiny model, and images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vip_model.hf import HFEngine

# The tiny model's matmuls are too small to gain from threads, and with `make test` running two
# workers on two cores (or anything else busy) OpenMP threads spin against each other: one
# thread is 10-20x faster here.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def engine(tiny_model_dir: Path) -> Iterator[HFEngine]:
    """One engine for the session (loading once is the point of the engine)."""
    with HFEngine(str(tiny_model_dir)) as e:
        yield e


@pytest.fixture
def fresh_engine(engine: HFEngine) -> HFEngine:
    """The session engine with an empty prefix cache."""
    engine.prefix_cache.clear()
    return engine


@pytest.fixture
def noise() -> Callable[..., Image.Image]:
    """A factory of seeded random RGB images: ``noise(w, h, seed=0)``."""

    def make(w: int, h: int, seed: int = 0) -> Image.Image:
        rng = np.random.default_rng(seed)
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")

    return make


@pytest.fixture(scope="session")
def hub_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model shaped like ``llava-hf/vip-llava-7b-hf`` (published config quirks, real
    Llama-2 tokenizer, 4.36 weight names), built once per session (~1 s)."""
    from hub_shaped import make_hub_shaped

    return make_hub_shaped(tmp_path_factory.mktemp("models") / "hub-7b", "7b")


@pytest.fixture(scope="session")
def hub_engine(hub_model_dir: Path) -> Iterator[HFEngine]:
    """An engine on :func:`hub_model_dir`."""
    with HFEngine(str(hub_model_dir)) as e:
        yield e
