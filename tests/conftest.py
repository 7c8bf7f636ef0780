"""Fixtures shared by every test package.

Tests never reach a model hub: the environment is made offline before anything imports
huggingface_hub, and every model is a tiny random ViP-LLaVA built on the spot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ViP-LLaVA of scale "tiny" (seed 0), built once per test session (~0.2 s).

    Load it with ``vip_model.HFEngine(str(tiny_model_dir))``; treat the folder as read-only.
    """
    from vip_model.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", "tiny", seed=0).path
