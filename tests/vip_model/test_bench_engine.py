"""bench/bench_engine.py compares the engine with a plain ``generate`` on the same model input."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

from vip_model.hf import HFEngine, model_input_image

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_engine.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_engine", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plain_baseline_reads_the_engines_prompt(hub_engine: HFEngine) -> None:
    """Same token ids and pixels as the engine, on the real Llama-2 tokenizer, where the
    processor's own tokenising (the old baseline) drops the ``▁`` after ``<image>``."""
    bench = _bench()
    r = bench.request(0, tokens=2)
    inputs = bench.plain_inputs(hub_engine, r)
    assert inputs["input_ids"][0].tolist() == hub_engine.input_ids(r)
    assert torch.equal(inputs["pixel_values"], hub_engine.pixel_values(r))
    processor = hub_engine.loaded.processor
    old = processor(images=model_input_image(r.image, r.prompts), text=r.text())["input_ids"]
    assert len(old[0]) == len(hub_engine.input_ids(r)) - 1
    assert bench.plain_generate(hub_engine, r) == 2
