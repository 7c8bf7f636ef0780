"""Random ViP-LLaVA models built offline, with the processor conventions of the hub checkpoints.

Every test and benchmark uses these instead of the 7B/13B weights we can never run here
(docs/VIP_FACTS.md §6). Same structure as ``llava-hf/vip-llava-7b-hf``: a Llama tokenizer-like BPE
with ``<s>``/``</s>``/``<unk>`` and the ``<image>``/``<pad>`` tokens appended last; a CLIP image
processor; ``LlavaProcessor`` with ``patch_size``, ``num_additional_image_tokens=1`` and the
"default" strategy; a CLIP vision tower of 12 layers (so the real feature layers
``[-2, -5, -8, -11, 6]`` exist) and a Llama decoder; hidden sizes >= 64 so that bitsandbytes
4-bit works on CPU.

- ``tiny``: 56 px / patch 14 -> 16 image tokens, ~0.6 M parameters; generates in milliseconds.
- ``small``: 336 px / patch 14 -> 576 image tokens, ~37 M parameters; realistic shapes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vip_model.errors import ModelError
from vip_model.templates import IMAGE_TOKEN, LLAVA_V1_CHAT_TEMPLATE, SYSTEM_TEXT

Scale = Literal["tiny", "small"]

#: The feature layers of the published checkpoints (docs/VIP_FACTS.md §3).
VIP_FEATURE_LAYERS: tuple[int, ...] = (-2, -5, -8, -11, 6)

# Written last into every built model: `overwrite` replaces only a folder holding it.
TINY_MARKER = ".vipstudio-tiny-model"

SCALES: dict[str, dict[str, Any]] = {
    "tiny": {
        "vocab": 400,
        "vision": {
            "image_size": 56,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 12,
            "num_attention_heads": 4,
        },
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 1024,
        },
    },
    "small": {
        "vocab": 1000,
        "vision": {
            "image_size": 336,
            "hidden_size": 256,
            "intermediate_size": 1024,
            "num_hidden_layers": 12,
            "num_attention_heads": 4,
        },
        "text": {
            "hidden_size": 512,
            "intermediate_size": 1408,
            "num_hidden_layers": 8,
            "num_attention_heads": 8,
            "num_key_value_heads": 8,
            "max_position_embeddings": 2048,
        },
    },
}
PATCH_SIZE = 14

# Text the BPE is trained on: the template words and the referring phrases, so that prompts
# tokenize into plausible pieces rather than single bytes.
_CORPUS = [
    SYSTEM_TEXT,
    "USER: ASSISTANT: ###Human: ###Assistant:",
    "What is the person within the red rectangle doing? Describe the object pointed to by the "
    "arrow. What color is the object with the blue mask contour? How many people are at the "
    "lime point? The instance within the yellow ellipse, the object with the fuchsia triangle.",
    "orange purple gold mask contour point arrow scribble triangle ellipse rectangle region image",
    "The man is holding a cup of coffee. A rocket is launching into the sky. The cat is sleeping.",
    "There are two dogs on the grass near a tree, a red car parked on the street and a bicycle.",
    "Yes. No. It is a photo of a kitchen with a table, chairs, a window and a plate of food.",
]


@dataclass(frozen=True)
class TinyModel:
    """What :func:`make_tiny_model` built."""

    path: Path
    scale: str
    parameters: int
    image_tokens: int
    vocab_size: int
    build_s: float


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars (shard writing/loading) for the duration."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def build_tokenizer(vocab: int) -> Any:
    """A byte-level BPE trained on the spot, wrapped like the hub's Llama tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<unk>", "<s>", "</s>"],  # ids 0, 1, 2 as in Llama
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer)
    # Appended after the vocabulary, as llava-hf did (<image> 32000, <pad> 32001).
    tok.add_special_tokens([IMAGE_TOKEN, "<pad>"])
    # Llama adds <s> in front of every text.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
    )


def build_processor(vocab: int, image_size: int) -> Any:
    """``LlavaProcessor`` = CLIP image processor (from arguments) + the BPE tokenizer."""
    from transformers import LlavaProcessor
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    # CLIPImageProcessor needs torchvision (docs/VIP_FACTS.md §6: not installable beside our torch);
    # the PIL backend saves the same "CLIPImageProcessor" config and gives the same pixels.
    image_processor_class: type[Any]
    if importlib.util.find_spec("torchvision") is not None:
        from transformers import CLIPImageProcessor

        image_processor_class = CLIPImageProcessor
    else:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        image_processor_class = CLIPImageProcessorPil
    image_processor = image_processor_class(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_resize=True,
        do_center_crop=True,
        do_normalize=True,
        do_convert_rgb=True,
        resample=3,  # bicubic
        image_mean=list(OPENAI_CLIP_MEAN),
        image_std=list(OPENAI_CLIP_STD),
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(vocab),
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )


def build_config(scale: str, tokenizer: Any) -> Any:
    """The ``VipLlavaConfig`` of a random model of ``scale`` for ``tokenizer``."""
    from transformers import CLIPVisionConfig, LlamaConfig, VipLlavaConfig

    spec = SCALES[scale]
    image_size = spec["vision"]["image_size"]
    vision = CLIPVisionConfig(
        **spec["vision"], patch_size=PATCH_SIZE, projection_dim=spec["vision"]["hidden_size"]
    )
    text = LlamaConfig(
        **spec["text"],
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return VipLlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=list(VIP_FEATURE_LAYERS),
        image_seq_length=(image_size // PATCH_SIZE) ** 2,
    )


def make_tiny_model(
    directory: str | os.PathLike[str],
    scale: Scale = "tiny",
    seed: int = 0,
    *,
    overwrite: bool = False,
) -> TinyModel:
    """Build a random ViP-LLaVA of ``scale`` into ``directory`` (safetensors), fully offline.

    The same ``seed`` gives the same weights. The folder is written next to its final place and
    moved there at the end, so a failed build leaves nothing half-written. An existing non-empty
    folder is an error unless ``overwrite``.
    """
    if scale not in SCALES:
        raise ModelError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}")
    target = Path(directory).expanduser()
    if target.exists() and not target.is_dir():
        raise ModelError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise ModelError(
                f"{target}: folder is not empty: choose another one, or overwrite it (--overwrite)"
            )
        if target.is_symlink() or not (target / TINY_MARKER).is_file():
            # --overwrite replaces only a model this function built: never a user's folder.
            raise ModelError(
                f"refusing to replace {target}: it is not a folder written by make-tiny-model "
                f"(no {TINY_MARKER} file inside); nothing was changed: choose another folder"
            )
    import torch
    from transformers import VipLlavaForConditionalGeneration

    started = time.perf_counter()

    processor = build_processor(SCALES[scale]["vocab"], SCALES[scale]["vision"]["image_size"])
    config = build_config(scale, processor.tokenizer)
    # fork_rng: building a model must not disturb the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VipLlavaForConditionalGeneration(config).eval()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
        write_hub_files(staging, processor)
        # mkdtemp makes the folder private; a model folder is as shareable as any other.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        (staging / TINY_MARKER).write_text("A random model built by vipstudio make-tiny-model.\n")
        if target.exists():
            shutil.rmtree(target)
        staging.replace(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TinyModel(
        path=target,
        scale=scale,
        parameters=sum(p.numel() for p in model.parameters()),
        image_tokens=config.image_seq_length,
        vocab_size=len(processor.tokenizer),
        build_s=time.perf_counter() - started,
    )


def write_hub_files(folder: Path, processor: Any) -> None:
    """The files of the published folders that ``save_pretrained`` (5.x) does not write:
    ``preprocessor_config.json``, ``chat_template.json`` (the llava_v1 conversation, see
    :data:`~vip_model.templates.LLAVA_V1_CHAT_TEMPLATE`), ``added_tokens.json`` and
    ``special_tokens_map.json`` — so that tools expecting a hub folder (TRL,
    ``apply_chat_template``, older transformers) work on it as on the real one."""
    tokenizer = processor.tokenizer
    processor.image_processor.save_pretrained(folder)
    files = {
        "chat_template.json": {"chat_template": LLAVA_V1_CHAT_TEMPLATE},
        "added_tokens.json": {
            token: tokenizer.convert_tokens_to_ids(token) for token in (IMAGE_TOKEN, "<pad>")
        },
        "special_tokens_map.json": {
            "bos_token": tokenizer.bos_token,
            "eos_token": tokenizer.eos_token,
            "unk_token": tokenizer.unk_token,
            "pad_token": tokenizer.pad_token,
            "image_token": IMAGE_TOKEN,
        },
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def make_config_stale(directory: str | os.PathLike[str]) -> None:
    """Rewrite ``config.json`` with the scalar ``vision_feature_layer: -2`` of the 7b-hf config.

    The weights keep their 5-layer projector, exactly the mismatch of the published checkpoint
    (docs/VIP_FACTS.md §5): a loader that does not correct the config fails on it.
    """
    path = Path(directory) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["vision_feature_layer"] = -2
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


__all__ = [
    "PATCH_SIZE",
    "SCALES",
    "VIP_FEATURE_LAYERS",
    "Scale",
    "TinyModel",
    "build_config",
    "build_processor",
    "build_tokenizer",
    "make_config_stale",
    "make_tiny_model",
    "quiet_transformers",
    "write_hub_files",
]
