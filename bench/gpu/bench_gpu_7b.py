"""ViP-LLaVA-7B at full size, random weights, on one CUDA GPU: what the real checkpoint costs.

    python bench/gpu/bench_gpu_7b.py [--tokens 64] [--budget-s 420] [--no-disk] [--json out.json]
    python bench/gpu/bench_gpu_7b.py --tiny-cpu     # the same steps on a shrunk model, on CPU

Builds the model from the published ``config.json`` (tests/fixtures/hub-configs; its stale scalar
``vision_feature_layer`` replaced by the trained five layers) with random fp16 weights made
directly on the GPU, feeds it the original token layout of a one-turn question (625 tokens, 576
of them image tokens) and prints: build and load time, memory, time to first token, decode
tokens/s at batch 1/8/32, sdpa vs eager, a static KV cache with torch.compile (and whether its
greedy output equals the dynamic cache's), 4-bit memory and speed (when bitsandbytes imports),
and the ratio of batch-1 decoding to the memory-bandwidth floor (all language-model weights read
once per token). Steps that would overrun ``--budget-s`` are skipped and say so.

Needs only torch (CUDA build), transformers, accelerate, safetensors, numpy; bitsandbytes for the
4-bit rows. Not run by ``bench/run_all.py``; without CUDA (and without --tiny-cpu) it says so and
exits 0. The weights are random, so the answers are noise: only speed and memory mean anything.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "fixtures" / "hub-configs" / "vip-llava-7b-hf.config.json"
IDS = ROOT / "tests" / "fixtures" / "llama2-tokenizer" / "original_token_ids.json"
FEATURE_LAYERS = [-2, -5, -8, -11, 6]
IMAGE_ID, PAD_ID, EOS_ID = 32000, 32001, 2
BATCHES = (1, 8, 32)
# Published peak memory bandwidth (TB/s), matched against the device name in this order.
BANDWIDTH_TBS = (
    ("H200", 4.8),
    ("H100 NVL", 3.9),
    ("H100 PCIe", 2.0),
    ("H100", 3.35),
    ("A100-SXM4-80GB", 2.039),
    ("A100 80GB PCIe", 1.935),
    ("A100", 1.555),
    ("L40S", 0.864),
    ("L40", 0.864),
    ("RTX 4090", 1.008),
    ("A10G", 0.6),
    ("A10", 0.6),
    ("L4", 0.3),
    ("T4", 0.32),
    ("V100", 0.9),
)
TINY = {
    "text_config": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
    },
    "vision_config": {
        "hidden_size": 64,  # 5 x 64 projector inputs: bitsandbytes' 4-bit blocks on CPU
        "intermediate_size": 128,
        "num_hidden_layers": 12,
        "num_attention_heads": 2,
        "projection_dim": 64,
    },
}


class Budget:
    """Seconds left of the run; a step that would not fit is skipped, not started."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def allows(self, estimate_s: float) -> bool:
        return time.perf_counter() + estimate_s < self.end


class Report:
    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}

    def add(self, name: str, value: Any, unit: str = "") -> None:
        self.rows[name] = value
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{name:<44} {shown} {unit}".rstrip(), flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    sync(device)
    started = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - started, out


def gib(n: float) -> float:
    return n / 2**30


def build_config(tiny: bool) -> Any:
    from transformers import VipLlavaConfig

    raw = json.loads(CONFIG.read_text(encoding="utf-8"))
    raw.pop("vision_feature_layer", None)  # the stale scalar (docs/VIP_FACTS.md §5)
    raw["vision_feature_layer"] = FEATURE_LAYERS
    if tiny:
        for part, sizes in TINY.items():
            raw[part].update(sizes)
    return VipLlavaConfig(**raw)


def prompt(batch: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The original ids of a one-turn question, -200 expanded to the 576 image tokens."""
    ids: list[int] = []
    for t in json.loads(IDS.read_text(encoding="utf-8"))["cases"]["training_turns1"]["ids"]:
        ids += [IMAGE_ID] * 576 if t == -200 else [t]
    input_ids = torch.tensor([ids] * batch, device=device)
    return input_ids, torch.ones_like(input_ids)


def pixels(batch: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """CLIP-normalised values of a random picture (what the processor would give)."""
    g = torch.Generator().manual_seed(0)
    return torch.randn((batch, 3, 336, 336), generator=g).to(device, dtype)


def build_model(config: Any, device: str, dtype: torch.dtype, attn: str) -> Any:
    """Random weights made where they will live (no host copy, no disk)."""
    from transformers import VipLlavaForConditionalGeneration

    with torch.device(device):
        model = VipLlavaForConditionalGeneration._from_config(
            config, dtype=dtype, attn_implementation=attn
        )
    model.generation_config.update(pad_token_id=PAD_ID, eos_token_id=EOS_ID, bos_token_id=1)
    return model.eval()


class Clock:
    """A streamer that only notes when each step's tokens arrive (generate hands them over on
    the host, so each note follows the device's work)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: Any) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


@torch.inference_mode()
def generate(
    model: Any, batch: int, tokens: int, *, static: bool = False, clock: Clock | None = None
) -> torch.Tensor:
    device = str(model.device)
    input_ids, mask = prompt(batch, device)
    kwargs: dict[str, Any] = {
        "max_new_tokens": tokens,
        "min_new_tokens": tokens,  # random weights may emit eos: always decode the same count
        "do_sample": False,
        "temperature": None,
        "top_p": None,
    }
    if static:
        kwargs["cache_implementation"] = "static"
    out: torch.Tensor = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        pixel_values=pixels(batch, device, model.dtype),
        streamer=clock,
        **kwargs,
    )
    return out[:, input_ids.shape[1] :]


def ttft_and_rate(
    model: Any, batch: int, tokens: int, device: str, static: bool = False
) -> tuple[float, float, torch.Tensor]:
    """(seconds to the first token, decoded tokens/s after it, the generated ids), one call."""
    clock = Clock()
    sync(device)
    started = time.perf_counter()
    out = generate(model, batch, tokens, static=static, clock=clock)
    # times[0]: the prompt handed over; [1]: the first new token; [-1]: the last one.
    first = clock.times[1] - started
    decoded = len(clock.times) - 2
    return first, batch * decoded / max(clock.times[-1] - clock.times[1], 1e-9), out


def decode_bytes(model: Any) -> int:
    """Bytes read per decoding step at batch 1: the language model and lm_head (not CLIP)."""
    parts = [model.model.language_model, model.lm_head]
    return sum(p.numel() * p.element_size() for m in parts for p in m.parameters())


def copy_bandwidth(device: str) -> float:
    """Measured device-memory bandwidth (bytes/s) of a large copy: read + write."""
    n = 2**28 if device.startswith("cuda") else 2**24  # 512 MiB / 32 MiB of fp16
    a = torch.empty(n, dtype=torch.float16, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    seconds, _ = timed(lambda: [b.copy_(a) for _ in range(10)], device)
    return 2 * a.numel() * a.element_size() * 10 / seconds


def nominal_bandwidth(name: str) -> float | None:
    for key, tbs in BANDWIDTH_TBS:
        if key.lower() in name.lower():
            return tbs * 1e12
    return None


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run(args: argparse.Namespace) -> dict[str, Any]:
    tiny = args.tiny_cpu
    device = "cpu" if tiny else "cuda"
    dtype = torch.float32 if tiny else torch.float16
    cuda = device == "cuda"
    budget = Budget(args.budget_s)
    r = Report()
    name = "cpu (shrunk config)" if tiny else torch.cuda.get_device_name(0)
    r.add("device", name)
    r.add(
        "torch / transformers",
        f"{torch.__version__} / {importlib.import_module('transformers').__version__}",
    )
    config = build_config(tiny)

    seconds, model = timed(lambda: build_model(config, device, dtype, "sdpa"), device)
    r.add("build: random weights on the device", seconds, "s")
    params = sum(p.numel() for p in model.parameters())
    r.add("parameters", f"{params / 1e9:.3f} B")
    if cuda:
        r.add("memory: weights", gib(torch.cuda.memory_allocated()), "GiB")

    folder: Path | None = None
    if not args.no_disk and budget.allows(120):
        folder = Path(tempfile.mkdtemp(prefix="vip7b-", dir=args.workdir))
        seconds, _ = timed(lambda: model.save_pretrained(folder), device)
        r.add("save_pretrained (safetensors)", seconds, "s")
        model = None
        free()
        from transformers import VipLlavaForConditionalGeneration

        seconds, model = timed(
            lambda: VipLlavaForConditionalGeneration.from_pretrained(
                folder, config=config, dtype=dtype, device_map=device
            ).eval(),
            device,
        )
        model.generation_config.update(pad_token_id=PAD_ID, eos_token_id=EOS_ID)
        r.add("load: from_pretrained from local disk", seconds, "s")

    generate(model, 1, 2)  # warm-up: kernels, allocator
    bandwidth = nominal_bandwidth(name)
    measured_bw = copy_bandwidth(device)
    r.add("copy bandwidth measured", measured_bw / 1e9, "GB/s")
    floor_bw = bandwidth or measured_bw
    floor_rate = floor_bw / decode_bytes(model)
    r.add("bytes read per decoding step (LM + lm_head)", gib(decode_bytes(model)), "GiB")
    r.add(
        "bandwidth floor, batch 1 (" + ("nominal" if bandwidth else "measured") + ")",
        floor_rate,
        "tokens/s",
    )

    state: dict[str, Any] = {"sdpa_rate": 0.0, "dynamic_out": None}
    for batch in BATCHES:
        if not budget.allows(30 if cuda else 5):
            r.add(f"batch {batch}", "skipped (time budget)")
            continue
        guarded(
            r, f"batch {batch}", lambda b=batch: _batch(r, model, b, args.tokens, floor_rate, state)
        )

    if budget.allows(40 if cuda else 5):
        guarded(r, "eager attention", lambda: _eager(r, model, args.tokens, state))
    else:
        r.add("eager attention", "skipped (time budget)")
    if budget.allows(150 if cuda else 10):
        guarded(r, "static cache + compile", lambda: _static(r, model, args.tokens, state))
    else:
        r.add("static cache + compile", "skipped (time budget)")

    model = None  # before 4-bit: its memory figure must not include the fp16 weights
    free()
    if folder is not None and budget.allows(90 if cuda else 10):
        four_bit = lambda: _four_bit(r, folder, config, device, dtype, args.tokens, state)  # noqa: E731
        guarded(r, "4-bit", four_bit)
    else:
        r.add("4-bit", "skipped (" + ("--no-disk" if folder is None else "time budget") + ")")
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return r.rows


def guarded(r: Report, name: str, step: Callable[[], None]) -> None:
    """Run one step; a failure (out of memory, a compile error) is reported and the run goes on."""
    try:
        step()
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        r.add(name, f"failed: {type(exc).__name__}: {first_line}")
        free()


def _batch(
    r: Report, model: Any, batch: int, tokens: int, floor_rate: float, state: dict[str, Any]
) -> None:
    device = str(model.device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    first, rate, out = ttft_and_rate(model, batch, tokens, device)
    if batch == 1:
        state["sdpa_rate"], state["dynamic_out"] = rate, out
        r.add("time to first token, batch 1 (625 tokens)", first, "s")
        r.add("ratio to the bandwidth floor, batch 1", rate / floor_rate)
    else:
        r.add(f"prefill + first token, batch {batch}", first, "s")
    r.add(f"decode, batch {batch}", rate, "tokens/s")
    if cuda:
        r.add(f"peak memory, batch {batch}", gib(torch.cuda.max_memory_allocated()), "GiB")


def _eager(r: Report, model: Any, tokens: int, state: dict[str, Any]) -> None:
    model.set_attn_implementation("eager")
    try:
        first, rate, _ = ttft_and_rate(model, 1, tokens, str(model.device))
    finally:
        model.set_attn_implementation("sdpa")
    r.add("eager: time to first token, batch 1", first, "s")
    r.add("eager: decode, batch 1", rate, "tokens/s")
    r.add("sdpa / eager decode, batch 1", state["sdpa_rate"] / rate)


def _static(r: Report, model: Any, tokens: int, state: dict[str, Any]) -> None:
    """Static KV cache: on CUDA, generate compiles the decoding step (torch.compile)."""
    device = str(model.device)
    warm, _ = timed(lambda: generate(model, 1, tokens, static=True), device)
    r.add("static cache: first call (compiles on CUDA)", warm, "s")
    first, rate, static_out = ttft_and_rate(model, 1, tokens, device, static=True)
    r.add("static cache: time to first token, batch 1", first, "s")
    r.add("static cache: decode, batch 1", rate, "tokens/s")
    r.add("static cache / dynamic decode, batch 1", rate / max(state["sdpa_rate"], 1e-9))
    dynamic_out = state["dynamic_out"]
    if dynamic_out is not None:
        same = torch.equal(static_out.cpu(), dynamic_out.cpu())
        where = (
            "" if same else f" (first difference at token {_first_diff(static_out, dynamic_out)})"
        )
        r.add("static cache: same greedy output", f"{'yes' if same else 'no'}{where}")


def _four_bit(
    r: Report,
    folder: Path,
    config: Any,
    device: str,
    dtype: Any,
    tokens: int,
    state: dict[str, Any],
) -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        r.add("4-bit", "skipped (bitsandbytes is not installed)")
        return
    from transformers import BitsAndBytesConfig, VipLlavaForConditionalGeneration

    cuda = device == "cuda"
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        llm_int8_skip_modules=["model.vision_tower", "lm_head"],  # as the original kept them
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds, q = timed(
        lambda: VipLlavaForConditionalGeneration.from_pretrained(
            folder, config=config, dtype=dtype, device_map=device, quantization_config=quant
        ).eval(),
        device,
    )
    q.generation_config.update(pad_token_id=PAD_ID, eos_token_id=EOS_ID)
    r.add("4-bit: load from local disk", seconds, "s")
    if cuda:
        r.add("4-bit: memory, weights", gib(torch.cuda.memory_allocated()), "GiB")
    generate(q, 1, 2)
    first, rate, _ = ttft_and_rate(q, 1, tokens, device)
    r.add("4-bit: time to first token, batch 1", first, "s")
    r.add("4-bit: decode, batch 1", rate, "tokens/s")
    r.add("4-bit / fp16 decode, batch 1", rate / max(state["sdpa_rate"], 1e-9))
    q = None
    free()


def _first_diff(a: torch.Tensor, b: torch.Tensor) -> int:
    a, b = a.cpu().flatten(), b.cpu().flatten()
    n = min(len(a), len(b))
    unequal = (a[:n] != b[:n]).nonzero()
    return int(unequal[0]) if len(unequal) else n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per decode run")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip steps past this")
    parser.add_argument("--no-disk", action="store_true", help="no save/load round-trip, no 4-bit")
    parser.add_argument("--workdir", default=None, help="where to save the 14 GB checkpoint")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--tiny-cpu", action="store_true", help="dry run on CPU, shrunk model")
    args = parser.parse_args()
    if not args.tiny_cpu and not torch.cuda.is_available():
        print("bench_gpu_7b: no CUDA device here: skipped (use --tiny-cpu for a dry run)")
        return 0
    if args.tiny_cpu:
        torch.set_num_threads(min(4, torch.get_num_threads()))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    rows = run(args)
    rows["wall_s"] = time.perf_counter() - started
    print(f"{'total wall time':<44} {rows['wall_s']:.1f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
