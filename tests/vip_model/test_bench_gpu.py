"""bench/gpu/bench_gpu_7b.py: skips cleanly without CUDA, and its steps run end to end on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu" / "bench_gpu_7b.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "no CUDA device here: skipped" in done.stdout


@pytest.mark.slow
def test_the_dry_run_on_a_shrunk_model_covers_every_step(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny-cpu", "--tokens", "3", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())
    for key in (
        "load: from_pretrained from local disk",
        "time to first token, batch 1 (625 tokens)",
        "decode, batch 32",
        "sdpa / eager decode, batch 1",
        "ratio to the bandwidth floor, batch 1",
    ):
        assert isinstance(rows[key], float), key
    assert rows["static cache: same greedy output"] == "yes"
    assert "4-bit: decode, batch 1" in rows or rows["4-bit"].startswith("skipped")
