"""Loading ViP-LLaVA once: where from, on which device, in which dtype, quantised or not.

The choices (docs/VIP_FACTS.md §5):

- source: an existing folder, else a hub id. Offline (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``,
  or ``local_files_only``) or already in the local cache means local files only: no network.
- device ``auto``: cuda, then mps, then cpu. dtype ``auto``: float16 on an accelerator (the
  checkpoints' dtype), float32 on cpu; bfloat16 on request.
- 4/8-bit through ``BitsAndBytesConfig`` (nf4 + double quantisation, fp16 compute on a GPU as the
  original code did; fp32 compute on cpu, where fp16 matmuls are slow or missing). As in the
  original, only the language model and the projector are quantised: the CLIP vision tower and
  ``lm_head`` keep the model's dtype (docs/VIP_FACTS.md §8).
- the image processor is always the PIL one the checkpoints were trained with: transformers 5.x
  otherwise picks its torchvision backend whenever torchvision is installed, and that resizes
  differently (1-6 levels on photos).
- every saved weight must land in the model: a key transformers cannot map would silently stay
  random, so missing or unexpected keys are a :class:`CheckpointMismatch`.
- attention ``flash_attention_2`` only on cuda with ``flash_attn`` importable, else ``sdpa``.
- The 7b-hf ``config.json`` holds a stale scalar ``vision_feature_layer: -2`` while its projector
  was trained on 5 concatenated layers: see :func:`correct_vision_feature_layer`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vip_model.errors import (
    DOWNLOAD_HINT,
    CheckpointMismatch,
    DeviceUnavailable,
    InvalidRequest,
    ModelError,
    ModelUnavailable,
    OutOfMemory,
    QuantizationUnavailable,
)
from vip_model.tiny import VIP_FEATURE_LAYERS, quiet_transformers

DEFAULT_MODEL = "llava-hf/vip-llava-7b-hf"
KNOWN_MODELS = ("llava-hf/vip-llava-7b-hf", "llava-hf/vip-llava-13b-hf")
DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "float16", "bfloat16", "float32")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PROJECTOR_NORM = "multi_modal_projector.projector_layernorm.weight"
#: Modules the original kept in half precision under 4/8-bit (module names of transformers 5.x).
QUANTIZATION_SKIP = ("model.vision_tower", "lm_head")
OOM_HINT = "try --load-4bit (or --load-8bit), a smaller max_new_tokens, or a shorter conversation"


@dataclass(frozen=True)
class LoadOptions:
    """How to load. ``local_files_only=None`` decides from the environment and the cache."""

    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    load_4bit: bool = False
    load_8bit: bool = False
    attn_implementation: str | None = None
    local_files_only: bool | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidRequest("model must be a hub id (org/name) or a folder")
        if self.device.split(":")[0] not in DEVICES:
            raise InvalidRequest(
                f"device {self.device!r}: use one of {', '.join(DEVICES)} (or cuda:N)"
            )
        if self.dtype not in DTYPES:
            raise InvalidRequest(f"dtype {self.dtype!r}: use one of {', '.join(DTYPES)}")
        if self.load_4bit and self.load_8bit:
            raise InvalidRequest("choose one of 4-bit and 8-bit loading, not both")

    @property
    def quantization(self) -> str | None:
        return "4bit" if self.load_4bit else "8bit" if self.load_8bit else None


@dataclass
class Loaded:
    """A resident model, its processor, and what was chosen to load them."""

    model: Any
    processor: Any
    source: str
    device: str
    dtype: str
    quantization: str | None
    attn_implementation: str
    vision_feature_layer: tuple[int, ...]
    config_corrected: bool
    image_size: int
    image_tokens: int
    load_s: float


def offline_env() -> bool:
    """True when the environment forbids hub access (read now, not at import time)."""
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def pick_device(asked: str = "auto") -> str:
    """The device to run on; :class:`DeviceUnavailable` if the asked one is missing."""
    import torch

    kind = asked.split(":")[0]
    has_cuda = torch.cuda.is_available()
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if kind == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if kind == "cuda" and not has_cuda:
        raise DeviceUnavailable(
            "CUDA was asked for but torch sees no GPU (no driver, or a CPU-only torch build): "
            "use --device cpu, or install a CUDA build of torch"
        )
    if kind == "mps" and not has_mps:
        raise DeviceUnavailable("Apple mps was asked for but is not available: use --device cpu")
    return asked


def pick_dtype(device: str, asked: str = "auto") -> str:
    """float16 on an accelerator, float32 on cpu, unless asked; no float16 on cpu."""
    if asked == "auto":
        return "float32" if device == "cpu" else "float16"
    if asked == "float16" and device == "cpu":
        raise DeviceUnavailable("float16 is not usable on cpu: use --dtype float32 or bfloat16")
    return asked


def pick_attention(device: str, dtype: str, asked: str | None = None) -> str:
    """``flash_attention_2`` when it can run (cuda, half precision, ``flash_attn``), else sdpa."""
    if asked is not None:
        return asked
    if (
        device.startswith("cuda")
        and dtype in ("float16", "bfloat16")
        and importlib.util.find_spec("flash_attn") is not None
    ):
        try:
            importlib.import_module("flash_attn")
        except Exception:  # a broken build (wrong CUDA/torch ABI) must not stop the load
            return "sdpa"
        return "flash_attention_2"
    return "sdpa"


def bitsandbytes_status() -> tuple[bool, str]:
    """(usable, version or reason). Importing it is the only reliable test."""
    try:
        if importlib.util.find_spec("bitsandbytes") is None:
            return False, "is not installed"
        module = importlib.import_module("bitsandbytes")
    except ImportError:
        return False, "is not installed"
    except Exception as exc:
        return False, f"fails to import ({type(exc).__name__}: {exc})"
    return True, str(getattr(module, "__version__", "?"))


def quantization_config(options: LoadOptions, device: str, dtype: str) -> Any:
    """The ``BitsAndBytesConfig`` for the asked quantisation, or None."""
    if options.quantization is None:
        return None
    usable, why = bitsandbytes_status()
    if not usable:
        raise QuantizationUnavailable(
            f"--load-{options.quantization} needs bitsandbytes, which {why}: "
            "pip install 'vip-studio[gpu]'"
        )
    if device.startswith("mps"):
        raise QuantizationUnavailable(
            "bitsandbytes does not run on Apple mps: "
            "drop --load-4bit/--load-8bit, or use --device cpu"
        )
    import torch
    from transformers import BitsAndBytesConfig

    if options.load_8bit:
        # On cpu bitsandbytes casts 8-bit matmul inputs to fp16 and warns on every call.
        warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(QUANTIZATION_SKIP))
    compute = getattr(torch, dtype) if dtype != "float32" else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True,
        llm_int8_skip_modules=list(QUANTIZATION_SKIP),
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def resolve_source(options: LoadOptions) -> tuple[str, bool]:
    """(folder or hub id, local files only). :class:`ModelUnavailable` if it cannot be found."""
    name = options.model.strip()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailable(
                f"{path}: is a folder but not a model folder (no config.json); pass the folder "
                "that holds config.json and the *.safetensors files"
            )
        return str(path), True
    if path.exists():
        raise ModelUnavailable(f"{path}: is a file; --model takes a model folder or a hub id")
    if not _HUB_ID.match(name) or name.startswith((".", "~", "/")):
        raise ModelUnavailable(f"{name}: no such folder; {DOWNLOAD_HINT}")
    if options.local_files_only is not None:
        return name, options.local_files_only
    return name, offline_env() or _cached_snapshot(name, options.cache_dir) is not None


def _cached_snapshot(repo_id: str, cache_dir: str | None) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return None
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    return Path(found).parent if isinstance(found, str) else None


def _model_files(source: str, cache_dir: str | None) -> Path | None:
    path = Path(source)
    if path.is_dir():
        return path
    return _cached_snapshot(source, cache_dir)


def model_folder(model: str, cache_dir: str | None = None) -> Path | None:
    """The folder on this machine holding ``model``'s files: the folder itself, or a hub id's
    cached snapshot; None when there is none (the desktop app sizes its load progress by it)."""
    return _model_files(str(Path(model.strip()).expanduser()), cache_dir)


def projector_feature_layers(folder: Path, vision_hidden: int) -> int | None:
    """How many vision layers the saved projector concatenates, read from the safetensors
    headers (no weights loaded); None when the files cannot tell."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        candidates = [(k, folder / f) for k, f in weight_map.items() if k.endswith(_PROJECTOR_NORM)]
    elif (folder / "model.safetensors").is_file():
        candidates = [("", folder / "model.safetensors")]
    else:
        return None
    for key, file in candidates:
        if not file.is_file():
            continue
        with safe_open(str(file), framework="pt") as f:
            names = [key] if key else [k for k in f.keys() if k.endswith(_PROJECTOR_NORM)]  # noqa: SIM118
            for name in names:
                width = f.get_slice(name).get_shape()[0]
                if width % vision_hidden == 0:
                    return int(width // vision_hidden)
    return None


def correct_vision_feature_layer(config: Any, folder: Path | None) -> bool:
    """Replace a stale scalar ``vision_feature_layer`` by the trained list; True if changed.

    The published 7b-hf config says ``-2`` but its projector takes 5 × 1024 features, the
    concatenation of layers ``[-2, -5, -8, -11, 6]``; transformers 5.x believes the scalar and
    builds a 1024-wide projector. The saved projector's width settles it: 5 layers wide -> the
    ViP-LLaVA list; 1 layer wide -> the scalar is right; unreadable -> the ViP-LLaVA list (every
    ViP-LLaVA checkpoint uses it); any other width -> an error naming the fix.
    """
    layer = config.vision_feature_layer
    if not isinstance(layer, int):
        return False
    count = projector_feature_layers(folder, config.vision_config.hidden_size) if folder else None
    if count == 1:
        return False
    if count is not None and count != len(VIP_FEATURE_LAYERS):
        raise ModelError(
            f"config.json says vision_feature_layer {layer} but the saved projector concatenates "
            f"{count} vision layers: write the list of {count} layers it was trained with into "
            "config.json (vision_feature_layer)"
        )
    config.vision_feature_layer = list(VIP_FEATURE_LAYERS)
    return True


def fix_processor(processor: Any, config: Any) -> int:
    """Make the processor insert as many ``<image>`` tokens as the vision tower yields
    (patches, CLS dropped) and pad on the left for batches; returns that number."""
    vision = config.vision_config
    expected = (vision.image_size // vision.patch_size) ** 2
    crop = getattr(processor.image_processor, "crop_size", None) or {}
    side_h = crop.get("height", vision.image_size) if isinstance(crop, dict) else vision.image_size
    side_w = crop.get("width", vision.image_size) if isinstance(crop, dict) else vision.image_size
    patch = getattr(processor, "patch_size", None)
    count = None
    if patch:
        count = (side_h // patch) * (side_w // patch) + (processor.num_additional_image_tokens or 0)
        count -= 1 if processor.vision_feature_select_strategy == "default" else 0
    if count != expected:
        # Older hub processor configs lack these; without patch_size the processor fails.
        processor.patch_size = vision.patch_size
        processor.num_additional_image_tokens = 1
        processor.vision_feature_select_strategy = "default"
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return expected


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def map_oom(exc: BaseException, while_: str) -> OutOfMemory | None:
    """An :class:`OutOfMemory` for an out-of-memory error (and frees the CUDA cache), else None."""
    if not _is_oom(exc):
        return None
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return OutOfMemory(f"out of memory while {while_}: {OOM_HINT}")


def load(options: LoadOptions) -> Loaded:
    """Load the model and its processor as ``options`` say; named errors for what can go wrong."""
    started = time.perf_counter()
    device = pick_device(options.device)
    dtype = pick_dtype(device, options.dtype)
    quant = quantization_config(options, device, dtype)
    attn = pick_attention(device, dtype, options.attn_implementation)
    source, local_only = resolve_source(options)

    import torch
    from transformers import AutoConfig, AutoProcessor, VipLlavaForConditionalGeneration

    hub = {"local_files_only": local_only, "cache_dir": options.cache_dir}
    try:
        config = AutoConfig.from_pretrained(source, **hub)
        if getattr(config, "model_type", None) != "vipllava":
            raise ModelUnavailable(
                f"{options.model}: is a {getattr(config, 'model_type', '?')!r} model, not "
                f"ViP-LLaVA (model_type 'vipllava'); {DOWNLOAD_HINT}"
            )
        processor = AutoProcessor.from_pretrained(source, backend="pil", **hub)
    except (OSError, ValueError) as exc:
        raise _unavailable(options, source, local_only, exc) from None
    corrected = correct_vision_feature_layer(config, _model_files(source, options.cache_dir))
    image_tokens = fix_processor(processor, config)
    kwargs: dict[str, Any] = {
        "config": config,
        "dtype": getattr(torch, dtype),
        "attn_implementation": attn,
        "device_map": {"": device},
        **hub,
    }
    if quant is not None:
        kwargs["quantization_config"] = quant
    try:
        with quiet_transformers():
            # output_loading_info: the (model, report) pair, which transformers' types omit.
            loaded: Any = VipLlavaForConditionalGeneration.from_pretrained(
                source, output_loading_info=True, **kwargs
            )
            model, report = loaded
    except OSError as exc:
        raise _unavailable(options, source, local_only, exc) from None
    except Exception as exc:
        oom = map_oom(exc, f"loading {options.model}")
        if oom is not None:
            raise oom from None
        raise
    check_loading_report(report, options.model)
    model.eval()
    layers = config.vision_feature_layer
    return Loaded(
        model=model,
        processor=processor,
        source=source,
        device=device,
        dtype=dtype,
        quantization=options.quantization,
        attn_implementation=attn,
        vision_feature_layer=tuple([layers] if isinstance(layers, int) else layers),
        config_corrected=corrected,
        image_size=config.vision_config.image_size,
        image_tokens=image_tokens,
        load_s=time.perf_counter() - started,
    )


def check_loading_report(report: dict[str, Any], model: str) -> None:
    """:class:`CheckpointMismatch` if transformers left a weight unloaded or a saved one unused."""
    problems = {
        what: sorted(report.get(key) or ())
        for key, what in (
            ("missing_keys", "missing (left random)"),
            ("unexpected_keys", "not used"),
            ("mismatched_keys", "of another shape"),
        )
    }
    found = {what: keys for what, keys in problems.items() if keys}
    if not found:
        return
    parts = [
        f"{len(keys)} {what}: {', '.join(map(str, keys[:3]))}{', …' if len(keys) > 3 else ''}"
        for what, keys in found.items()
    ]
    raise CheckpointMismatch(
        f"{model}: the saved weights do not fit the model ({'; '.join(parts)}); the folder is "
        "incomplete or not a ViP-LLaVA checkpoint of this layout: download it again, or use "
        "llava-hf/vip-llava-7b-hf / -13b-hf"
    )


def _unavailable(
    options: LoadOptions, source: str, local_only: bool, exc: Exception
) -> ModelUnavailable:
    if Path(source).is_dir():
        return ModelUnavailable(f"{source}: cannot load the model from this folder ({exc})")
    where = (
        "not in the local Hugging Face cache (and hub access is off)"
        if local_only
        else (
            "not in the local Hugging Face cache, and the hub could not provide it "
            "(no connection, or no such repository)"
        )
    )
    return ModelUnavailable(f"{options.model}: {where}; {DOWNLOAD_HINT}")


__all__ = [
    "DEFAULT_MODEL",
    "DEVICES",
    "DTYPES",
    "KNOWN_MODELS",
    "QUANTIZATION_SKIP",
    "LoadOptions",
    "Loaded",
    "bitsandbytes_status",
    "check_loading_report",
    "correct_vision_feature_layer",
    "fix_processor",
    "load",
    "map_oom",
    "offline_env",
    "pick_attention",
    "pick_device",
    "pick_dtype",
    "projector_feature_layers",
    "quantization_config",
    "resolve_source",
]
