"""Small models shaped like the published ``llava-hf/vip-llava-*-hf`` folders.

Everything of the published files is kept (``tests/fixtures/``: the config quirks, the
preprocessor config, the real Llama-2 tokenizer with ``<image>`` = 32000 and ``<pad>`` = 32001,
``legacy: false``) except the sizes; the weights are saved under the names transformers 4.36
wrote into the published safetensors. Building one takes about a second.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOKENIZER_MODEL = FIXTURES / "llama2-tokenizer" / "tokenizer.model"
ORIGINAL_IDS = FIXTURES / "llama2-tokenizer" / "original_token_ids.json"
HUB_CONFIGS = FIXTURES / "hub-configs"
IMAGE_ID, PAD_ID, IMAGE_TOKENS = 32000, 32001, 576

# Shrunk sizes; image size and patch stay (576 image tokens), 12 vision layers so that the
# feature layers [-2, -5, -8, -11, 6] exist.
_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}
_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 12,
    "num_attention_heads": 2,
    "projection_dim": 32,
}

# transformers 5.x module names -> the names of the published (4.36) safetensors.
_TO_436 = [
    (r"^lm_head\.", "language_model.lm_head."),
    (r"^model\.language_model\.", "language_model.model."),
    (r"^model\.vision_tower\.", "vision_tower."),
    (r"^model\.multi_modal_projector\.", "multi_modal_projector."),
]


def name_436(name: str) -> str:
    """The published checkpoint's name for a transformers 5.x parameter name."""
    for pattern, replacement in _TO_436:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name)
    raise ValueError(f"no 4.36 name for {name}")


@functools.cache
def llama2_tokenizer(legacy: bool = False) -> Any:
    """The real Llama-2 tokenizer with the two tokens llava-hf appended, as published."""
    from transformers import AddedToken, LlamaTokenizer

    # from_pretrained converts the SentencePiece model (sentencepiece + protobuf); the bare
    # constructor would not read the file.
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(TOKENIZER_MODEL, folder)
        tokenizer = LlamaTokenizer.from_pretrained(
            folder, legacy=legacy, add_bos_token=True, add_eos_token=False
        )
    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)])
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    assert tokenizer.convert_tokens_to_ids(["<image>", "<pad>"]) == [IMAGE_ID, PAD_ID]
    return tokenizer


def shrunk_config(name: str) -> dict[str, Any]:
    """The published ``config.json`` of ``name`` ("7b" or "13b") with small sizes."""
    config: dict[str, Any] = json.loads(
        (HUB_CONFIGS / f"vip-llava-{name}-hf.config.json").read_text(encoding="utf-8")
    )
    config["text_config"].update(_TEXT)
    config["vision_config"].update(_VISION)
    return config


def make_hub_shaped(directory: Path, name: str = "7b", seed: int = 0) -> Path:
    """Write a small random model shaped like ``llava-hf/vip-llava-{name}-hf`` to ``directory``."""
    from safetensors.torch import save_file
    from transformers import VipLlavaConfig, VipLlavaForConditionalGeneration

    from vip_model.tiny import VIP_FEATURE_LAYERS

    published = shrunk_config(name)
    # The model the weights come from has the 5-layer projector the checkpoints were trained with.
    built = {
        k: v
        for k, v in published.items()
        if k not in ("vision_feature_layers", "vision_feature_layer")
    }
    config = VipLlavaConfig(**{**built, "vision_feature_layer": list(VIP_FEATURE_LAYERS)})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VipLlavaForConditionalGeneration(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    state = {name_436(k): v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(published, indent=2), encoding="utf-8")
    # Both published folders ship the same processor and tokenizer files.
    for kind in ("preprocessor_config", "added_tokens", "generation_config"):
        shutil.copy(HUB_CONFIGS / f"vip-llava-7b-hf.{kind}.json", directory / f"{kind}.json")
    tokenizer = llama2_tokenizer(legacy=False)
    tokenizer.save_pretrained(directory)
    shutil.copy(TOKENIZER_MODEL, directory / "tokenizer.model")
    # What the llava-hf tokenizer configs say (docs/VIP_FACTS.md §8).
    path = directory / "tokenizer_config.json"
    tokenizer_config = json.loads(path.read_text(encoding="utf-8"))
    tokenizer_config.update(legacy=False, add_bos_token=True, add_eos_token=False)
    path.write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    return directory


def state_dict_436(directory: Path) -> dict[str, torch.Tensor]:
    """The weights of a hub-shaped folder, under their published names."""
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def original_case(case: str) -> tuple[str, list[int]]:
    """(prompt, ids) of a golden case, ``-200`` expanded to the 576 image tokens."""
    data = json.loads(ORIGINAL_IDS.read_text(encoding="utf-8"))
    entry = data["cases"][case]
    ids: list[int] = []
    for t in entry["ids"]:
        ids += [IMAGE_ID] * IMAGE_TOKENS if t == -200 else [t]
    return entry["prompt"], ids


def original_conversation() -> tuple[list[str], list[str]]:
    data = json.loads(ORIGINAL_IDS.read_text(encoding="utf-8"))
    return data["questions"], data["answers"]
