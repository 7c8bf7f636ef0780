"""What this machine can do with ViP-LLaVA, and the fix for each missing piece."""

from __future__ import annotations

import importlib.util
import os
import platform
from dataclasses import asdict, dataclass
from typing import Literal

from vip_model.errors import DOWNLOAD_HINT
from vip_model.loading import KNOWN_MODELS, bitsandbytes_status, offline_env

Status = Literal["ok", "missing", "n/a"]

GPU_HINT = (
    "install the NVIDIA driver and a CUDA build of torch (https://pytorch.org/get-started); "
    "without a GPU the 7B model runs on the CPU, slowly: use --load-4bit (about 5 GB of RAM)"
)
#: Rough memory the weights need, in GB: (fp16, 8-bit, 4-bit).
WEIGHTS_GB = {"7b": (14.2, 7.5, 4.5), "13b": (26.7, 14.0, 8.0)}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found, and what to do if missing."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def diagnose(cache_dir: str | None = None) -> list[Check]:
    """Inspect versions, devices, optional packages and the local model cache. Never loads a
    model and never touches the network."""
    return [
        _versions(),
        _device(),
        _cuda(),
        _bitsandbytes(),
        _flash_attn(),
        _memory(),
        _hub_access(),
        _cached_models(cache_dir),
    ]


def _versions() -> Check:
    import torch
    import transformers

    detail = (
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )
    major = int(transformers.__version__.split(".")[0])
    if major < 5:
        return Check("versions", "missing", detail, "pip install 'transformers>=5,<6'")
    return Check("versions", "ok", detail)


def _device() -> Check:
    from vip_model.loading import pick_device, pick_dtype

    device = pick_device("auto")
    dtype = pick_dtype(device)
    detail = f"--device auto uses {device} ({dtype})"
    if device == "cpu":
        return Check("device", "ok", detail + ": works, but a 7B answer takes minutes")
    return Check("device", "ok", detail)


def _cuda() -> Check:
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda
        why = (
            "torch is a CPU-only build"
            if built is None
            else f"no GPU visible (torch built for CUDA {built})"
        )
        return Check("cuda", "missing", why, GPU_HINT)
    parts = []
    smallest = float("inf")
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        smallest = min(smallest, total / 1e9)
        name = torch.cuda.get_device_name(index)
        parts.append(f"cuda:{index} {name}, {free / 1e9:.1f} of {total / 1e9:.1f} GB free")
    fix = None
    if smallest < WEIGHTS_GB["7b"][0] + 2:
        fix = "under 16 GB of GPU memory: load the 7B model with --load-4bit (or --load-8bit)"
    return Check("cuda", "ok", f"CUDA {torch.version.cuda}; " + "; ".join(parts), fix)


def _bitsandbytes() -> Check:
    usable, why = bitsandbytes_status()
    if usable:
        return Check("bitsandbytes", "ok", f"version {why}: --load-4bit / --load-8bit available")
    return Check(
        "bitsandbytes",
        "missing",
        f"bitsandbytes {why}: --load-4bit / --load-8bit unavailable",
        "pip install 'vip-studio[gpu]'",
    )


def _flash_attn() -> Check:
    import torch

    if importlib.util.find_spec("flash_attn") is None:
        if not torch.cuda.is_available():
            return Check(
                "flash-attn", "n/a", "not installed; it needs a CUDA GPU (sdpa attention is used)"
            )
        return Check(
            "flash-attn",
            "missing",
            "not installed: sdpa attention is used",
            "pip install flash-attn --no-build-isolation (builds against your CUDA toolkit)",
        )
    from vip_model.loading import pick_attention

    if not torch.cuda.is_available():
        return Check("flash-attn", "n/a", "installed, but only used on a CUDA GPU")
    attn = pick_attention("cuda", "float16")
    if attn != "flash_attention_2":
        return Check(
            "flash-attn",
            "missing",
            "installed but fails to import (built for another torch/CUDA?)",
            "pip install --force-reinstall flash-attn --no-build-isolation",
        )
    return Check("flash-attn", "ok", "flash_attention_2 is used on the GPU")


def _memory() -> Check:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return Check("memory", "n/a", "cannot read the machine's RAM size")
    fp16, _, q4 = WEIGHTS_GB["7b"]
    detail = f"{total:.1f} GB RAM, {os.cpu_count()} CPU cores"
    if total < q4 + 2:
        return Check(
            "memory",
            "missing",
            detail + ": too little for the 7B model even in 4-bit",
            "use a machine with at least 8 GB of RAM, or a GPU",
        )
    if total < 2 * fp16 + 2:
        return Check(
            "memory",
            "ok",
            detail + ": on CPU the 7B model fits in bfloat16, 8-bit or 4-bit, not float32",
        )
    return Check("memory", "ok", detail)


def _hub_access() -> Check:
    if offline_env():
        return Check(
            "hub access",
            "ok",
            "offline (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE): only cached models load",
        )
    return Check("hub access", "ok", "allowed: a model not in the cache is downloaded on first use")


def _cached_models(cache_dir: str | None) -> Check:
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return Check("models", "n/a", "huggingface_hub is missing: cannot read the cache")
    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound as exc:
        return Check(
            "models", "missing", f"no Hugging Face cache at {exc.cache_dir}", DOWNLOAD_HINT
        )
    except OSError as exc:
        return Check("models", "n/a", f"cannot read the Hugging Face cache ({exc})")
    found = []
    for repo in info.repos:
        if repo.repo_type == "model" and "vip-llava" in repo.repo_id.lower():
            complete = any(
                f.file_name.endswith(".safetensors") for rev in repo.revisions for f in rev.files
            )
            state = "" if complete else " (incomplete: no weights)"
            found.append(f"{repo.repo_id} ({_size(repo.size_on_disk)}){state}")
    if not found:
        from huggingface_hub import constants

        names = " or ".join(KNOWN_MODELS)
        where = cache_dir or constants.HF_HUB_CACHE
        return Check("models", "missing", f"no ViP-LLaVA model ({names}) in {where}", DOWNLOAD_HINT)
    return Check("models", "ok", "; ".join(found))


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


__all__ = ["Check", "Status", "diagnose"]
