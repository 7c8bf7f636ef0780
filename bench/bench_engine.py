"""Benchmark of the transformers engine on the offline random models (no hub, no GPU needed).

    .venv/bin/python bench/bench_engine.py [--tokens 32] [--repeat 3] [--json out/bench.json]

Measures: tiny/small build time; engine vs a plain ``generate`` on the same input (overhead);
time to first streamed token; decoding rate; follow-up TTFT with the prefix KV cache vs the
first turn; a batch of 8 vs one at a time; 4-bit vs full precision (memory and speed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import overlays as ov
from vip_model import GenerationSettings, Request
from vip_model.hf import HFEngine, model_input_image
from vip_model.loading import bitsandbytes_status
from vip_model.tiny import make_tiny_model
from vip_model.tokens import encode_pieces


def best_time(fn: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs: on a shared machine the others measure the neighbours."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def photo(seed: int, size: tuple[int, int] = (1024, 768)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def request(seed: int, tokens: int, question: str = "What is within the red rectangle?") -> Request:
    return Request(
        photo(seed),
        question,
        prompts=(ov.Rectangle((180, 20, 420, 230)),),
        settings=GenerationSettings(max_new_tokens=tokens),
    )


def plain_inputs(engine: HFEngine, r: Request) -> dict[str, torch.Tensor]:
    """The engine's model input built by hand: token ids as ``vip_model.tokens`` lays them out
    (the original layout; the processor's own tokenising drops a ``▁`` after ``<image>``, one
    token fewer, so the baseline would read a different prompt) and the image processor's
    pixel values of the marked, padded image."""
    lo = engine.loaded
    pieces = r.conversation_template().pieces(r.history, r.question)
    image_id = lo.model.config.image_token_id
    ids = torch.tensor([encode_pieces(lo.processor.tokenizer, pieces, image_id, lo.image_tokens)])
    pixels = lo.processor.image_processor(
        images=model_input_image(r.image, r.prompts), return_tensors="pt"
    )["pixel_values"]
    return {
        "input_ids": ids.to(lo.model.device),
        "attention_mask": torch.ones_like(ids).to(lo.model.device),
        "pixel_values": pixels.to(lo.model.device, getattr(torch, lo.dtype)),
    }


@torch.inference_mode()
def plain_generate(engine: HFEngine, r: Request) -> int:
    """What a script using transformers directly does with the same input: one ``generate``."""
    inputs = plain_inputs(engine, r)
    # Same stopping as the engine: a fixed number of new tokens (the random model rarely stops).
    out = engine.loaded.model.generate(
        **inputs, max_new_tokens=r.settings.max_new_tokens, do_sample=False
    )
    return int(out.shape[1] - inputs["input_ids"].shape[1])


def bench_model(path: Path, tokens: int, repeat: int) -> dict[str, Any]:
    res: dict[str, Any] = {}
    t = time.perf_counter()
    engine = HFEngine(str(path))
    res["load_s"] = time.perf_counter() - t
    r = request(0, tokens)
    engine.ask(r)  # warm-up
    plain_generate(engine, r)
    # A fair comparison reads the same prompt: same ids, same pixels.
    plain = plain_inputs(engine, r)
    assert plain["input_ids"][0].tolist() == engine.input_ids(r), "baseline prompt differs"
    assert torch.equal(
        plain["pixel_values"].cpu(), engine.pixel_values(r).to(plain["pixel_values"].dtype)
    )
    res["prompt_tokens"] = len(engine.input_ids(r))

    def ask_fresh() -> None:
        engine.prefix_cache.clear()
        engine.ask(r)

    res["plain_generate_s"] = best_time(lambda: plain_generate(engine, r), repeat)
    res["engine_ask_s"] = best_time(ask_fresh, repeat)
    res["overhead_pct"] = 100 * (res["engine_ask_s"] / res["plain_generate_s"] - 1)

    engine.prefix_cache.clear()
    stream = engine.stream(r)
    for _ in stream:
        pass
    first = stream.answer
    res["first_turn_ttft_s"] = first.timings.ttft_s
    res["tokens_per_s"] = first.timings.tokens_per_s
    follow = r.follow_up(first.text, "What color is it?")
    followed = engine.ask(follow)
    engine.prefix_cache.clear()
    scratch = engine.ask(follow)
    res["follow_up_ttft_s"] = followed.timings.ttft_s
    res["follow_up_scratch_ttft_s"] = scratch.timings.ttft_s
    res["follow_up_ttft_ratio_pct"] = 100 * followed.timings.ttft_s / first.timings.ttft_s
    res["follow_up_cached_tokens"] = f"{followed.cached_tokens}/{followed.prompt_tokens}"
    res["follow_up_identical"] = followed.text == scratch.text

    batch = [request(i, tokens, f"Question number {i}: what is it?") for i in range(8)]
    engine.batch(batch[:2])  # warm-up
    t = time.perf_counter()
    answers = engine.batch(batch)
    batched = time.perf_counter() - t
    t = time.perf_counter()
    singles = []
    for b in batch:
        engine.prefix_cache.clear()
        singles.append(engine.ask(b))
    sequential = time.perf_counter() - t
    res["batch8_s"] = batched
    res["one_by_one8_s"] = sequential
    res["batch_speedup"] = sequential / batched
    res["batch_equals_one_by_one"] = [a.text for a in answers] == [a.text for a in singles]
    res["memory_mb"] = engine.loaded.model.get_memory_footprint() / 1e6
    engine.close()

    usable, why = bitsandbytes_status()
    if usable:
        q = HFEngine(str(path), load_4bit=True)
        q.ask(r)
        res["4bit_memory_mb"] = q.loaded.model.get_memory_footprint() / 1e6

        def ask_q() -> None:
            q.prefix_cache.clear()
            q.ask(r)

        res["4bit_ask_s"] = best_time(ask_q, repeat)
        q.close()
    else:
        res["4bit"] = f"skipped: bitsandbytes {why}"
    return res


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per answer")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best)")
    parser.add_argument("--scales", default="tiny,small", help="comma-separated: tiny,small")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales.split(","):
            built = make_tiny_model(Path(tmp) / scale, scale)
            results[scale] = {"build_s": built.build_s, "parameters_m": built.parameters / 1e6}
            results[scale].update(bench_model(built.path, args.tokens, args.repeat))
    for scale, values in results.items():
        if not isinstance(values, dict):
            print(f"{scale}: {values}")
            continue
        print(f"\n== {scale}")
        for key, value in values.items():
            print(
                f"  {key:<28} {value:.3f}" if isinstance(value, float) else f"  {key:<28} {value}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
