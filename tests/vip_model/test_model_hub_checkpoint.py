"""Checkpoints shaped like the published ones load completely and exactly, with the processor
they were trained with; a checkpoint whose weights do not all map fails by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hub_shaped import make_hub_shaped, name_436, state_dict_436
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import VipLlavaConfig, VipLlavaForConditionalGeneration

from vip_model import CheckpointMismatch, Request
from vip_model.hf import HFEngine
from vip_model.tiny import VIP_FEATURE_LAYERS

Noise = Callable[..., Image.Image]


def _by_hand(folder: Path) -> VipLlavaForConditionalGeneration:
    """The model with every published weight placed by its name, no loader involved."""
    published = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    published.pop("vision_feature_layers", None)
    published["vision_feature_layer"] = list(VIP_FEATURE_LAYERS)
    # float32 as the engine loads on cpu (the published config says float16).
    model = VipLlavaForConditionalGeneration(VipLlavaConfig(**published)).float().eval()
    saved = state_dict_436(folder)
    state = {name: saved[name_436(name)] for name in model.state_dict()}
    assert len(state) == len(saved)  # every saved weight has a place, every place a weight
    model.load_state_dict(state, strict=True)
    return model


@pytest.mark.parametrize("name", ["7b", "13b"])
def test_a_hub_shaped_checkpoint_loads_every_weight_exactly(
    name: str, tmp_path: Path, noise: Noise
) -> None:
    folder = make_hub_shaped(tmp_path / name, name, seed=1)
    with HFEngine(str(folder)) as engine:
        info = engine.info()
        assert info.vision_feature_layer == VIP_FEATURE_LAYERS
        assert info.config_corrected == (name == "7b")  # the stale scalar of the 7b config
        assert info.image_tokens == 576
        request = Request(noise(80, 60, seed=2), "What is it?")
        ids = torch.tensor([engine.input_ids(request)])
        pixels = engine.pixel_values(request)
        with torch.inference_mode():
            loaded = engine.loaded.model(input_ids=ids, pixel_values=pixels).logits
            expected = _by_hand(folder)(input_ids=ids, pixel_values=pixels).logits
        assert torch.equal(loaded, expected)


@pytest.mark.parametrize("damage", ["missing", "unexpected", "renamed"])
def test_a_weight_that_does_not_map_is_a_named_error(
    damage: str, hub_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "damaged"
    folder.mkdir()
    for file in hub_model_dir.iterdir():
        if file.name != "model.safetensors":
            (folder / file.name).write_bytes(file.read_bytes())
    state = load_file(str(hub_model_dir / "model.safetensors"))
    key = "language_model.model.layers.1.mlp.up_proj.weight"
    if damage == "missing":
        del state[key]
    elif damage == "unexpected":
        state["language_model.model.layers.9.mlp.up_proj.weight"] = state[key].clone()
    else:  # a layout transformers does not know how to map
        state["language_model.decoder.layers.1.mlp.up_proj.weight"] = state.pop(key)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointMismatch, match=r"do not fit the model .*layers\.[19]"):
        HFEngine(str(folder))


def test_the_pil_image_processor_is_used_even_with_torchvision(
    hub_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers 5.x picks the torchvision ``CLIPImageProcessor`` whenever torchvision is
    installed (common on CUDA machines). It is not installable here: a stand-in registered under
    that name, with torchvision reported present, is what transformers would pick."""
    import transformers.models.clip as clip
    from transformers.models.auto import image_processing_auto
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    class CLIPImageProcessor(CLIPImageProcessorPil):  # the torchvision backend's class name
        pass

    monkeypatch.setattr(image_processing_auto, "is_torchvision_available", lambda: True)
    monkeypatch.setattr(clip, "CLIPImageProcessor", CLIPImageProcessor, raising=False)
    with HFEngine(str(hub_model_dir)) as engine:
        assert type(engine.loaded.processor.image_processor) is CLIPImageProcessorPil


def test_make_tiny_model_writes_the_hub_file_set(tiny_model_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "processor_config.json",
        "chat_template.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
    } <= names
    added = json.loads((tiny_model_dir / "added_tokens.json").read_text(encoding="utf-8"))
    assert set(added) == {"<image>", "<pad>"}


@pytest.mark.parametrize("turns", [1, 3])
def test_the_chat_template_renders_the_trained_conversation(
    turns: int, tiny_model_dir: Path
) -> None:
    """What TRL and ``apply_chat_template`` see is the llava_v1 text the engine feeds."""
    from transformers import AutoProcessor

    from vip_model.templates import LLAVA_V1, Turn

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    history = [Turn(f"Q{i}?", f"A{i}.") for i in range(turns - 1)]
    messages: list[dict[str, object]] = []
    for i, turn in enumerate(history):
        content: list[dict[str, str]] = [{"type": "text", "text": turn.question}]
        messages.append(
            {"role": "user", "content": ([{"type": "image"}] if i == 0 else []) + content}
        )
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
    last = [{"type": "text", "text": "Why?"}]
    messages.append(
        {"role": "user", "content": ([{"type": "image"}] if not history else []) + last}
    )
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == LLAVA_V1.prompt(history, "Why?")
    # A training example (the answer included) ends the answer with </s>, as in training.
    full = [*messages, {"role": "assistant", "content": [{"type": "text", "text": "Because."}]}]
    trained = processor.apply_chat_template(full, tokenize=False)
    assert trained == LLAVA_V1.prompt(history, "Why?") + " Because.</s>"
