"""Fixtures shared by every test package.

Tests never reach a model hub: the environment is made offline before anything imports
huggingface_hub, and every model is a tiny random ViP-LLaVA built on the spot.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: What tests/conformance/ loads our outputs with; their versions head every test report.
CONSUMERS = ("openai", "datasets", "trl", "transformers", "torch")


def pytest_report_header() -> list[str]:
    versions = []
    for name in CONSUMERS:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed: its conformance tests skip)")
    return [
        "consumers: " + ", ".join(versions),
        "mirrored consumers: mu-cai/ViP-LLaVA ab4e364, hiyouga/LLaMA-Factory ff6d4d1, "
        "modelscope/ms-swift 3602360 (tests/conformance/)",
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ViP-LLaVA of scale "tiny" (seed 0), built once per test session (~0.2 s).

    Load it with ``vip_model.HFEngine(str(tiny_model_dir))``; treat the folder as read-only.
    """
    from vip_model.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", "tiny", seed=0).path
