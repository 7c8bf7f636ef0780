"""The offline random ViP-LLaVA has the hub checkpoints' conventions (docs/VIP_FACTS.md §5, §6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoProcessor, VipLlavaForConditionalGeneration

from vip_model import ModelError, make_config_stale, make_tiny_model
from vip_model.tiny import VIP_FEATURE_LAYERS


def test_files_and_config(tiny_model_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= names
    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert config.model_type == "vipllava"
    assert list(config.vision_feature_layer) == list(VIP_FEATURE_LAYERS)
    assert config.vision_config.num_hidden_layers >= 11  # layer -11 must exist
    assert config.text_config.hidden_size >= 64 and config.vision_config.hidden_size >= 64
    size = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert size < 5_000_000


def test_processor_conventions_match_the_hub(tiny_model_dir: Path) -> None:
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    tok = processor.tokenizer
    assert type(processor).__name__ == "LlavaProcessor"
    assert processor.patch_size == 14
    assert processor.num_additional_image_tokens == 1
    assert processor.vision_feature_select_strategy == "default"
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (1, 2, 0)
    vocab = len(tok)
    # <image> and <pad> are appended last, as in the hub tokenizer (32000, 32001).
    assert tok.convert_tokens_to_ids("<image>") == vocab - 2
    assert tok.pad_token == "<pad>" and tok.pad_token_id == vocab - 1
    assert tok.padding_side == "left"
    assert tok("hi")["input_ids"][0] == tok.bos_token_id
    assert tok.convert_ids_to_tokens(tok("a</s>")["input_ids"])[-1] == "</s>"
    ip = processor.image_processor
    assert ip.crop_size == {"height": 56, "width": 56} and ip.size == {"shortest_edge": 56}
    assert list(ip.image_mean) == pytest.approx([0.48145466, 0.4578275, 0.40821073])


def test_the_processor_inserts_one_token_per_patch(tiny_model_dir: Path) -> None:
    from PIL import Image

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    out = processor(images=Image.new("RGB", (56, 56)), text="USER: <image>\nq", return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((out["input_ids"] == image_id).sum()) == (56 // 14) ** 2
    assert tuple(out["pixel_values"].shape) == (1, 3, 56, 56)


def test_same_seed_same_weights_other_seed_other_weights(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    again = make_tiny_model(tmp_path / "again", seed=0)
    other = make_tiny_model(tmp_path / "other", seed=1)
    ref = load_file(tiny_model_dir / "model.safetensors")
    same = load_file(again.path / "model.safetensors")
    diff = load_file(other.path / "model.safetensors")
    key = next(k for k in ref if k.endswith("multi_modal_projector.linear_1.weight"))
    assert torch.equal(ref[key], same[key])
    assert not torch.equal(ref[key], diff[key])
    assert again.build_s < 2.0  # typically ~0.1 s once torch is imported


def test_build_refuses_a_non_empty_folder_then_overwrites(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(ModelError, match="not empty"):
        make_tiny_model(tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").exists()
    # --overwrite replaces only a model built here, never a user's folder
    with pytest.raises(ModelError, match="not a folder written by make-tiny-model"):
        make_tiny_model(tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / "keep.txt").read_text() == "x"
    built = make_tiny_model(tmp_path / "built")
    (built.path / "extra.txt").write_text("y")
    again = make_tiny_model(tmp_path / "built", overwrite=True)
    assert not (again.path / "extra.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "m"]  # no staging left
    with pytest.raises(ModelError, match="unknown scale"):
        make_tiny_model(tmp_path / "x", "huge")  # type: ignore[arg-type]


def test_stale_config_breaks_a_naive_load(tmp_path: Path) -> None:
    built = make_tiny_model(tmp_path / "stale")
    make_config_stale(built.path)
    assert json.loads((built.path / "config.json").read_text())["vision_feature_layer"] == -2
    # What transformers 5.x does with the 7b-hf config unless the loader corrects it:
    with pytest.raises(RuntimeError, match=r"mismatched|ignore_mismatched_sizes"):
        VipLlavaForConditionalGeneration.from_pretrained(built.path)


def test_small_scale_has_realistic_shapes(tmp_path: Path) -> None:
    built = make_tiny_model(tmp_path / "small", "small")
    assert built.image_tokens == 576
    assert 20e6 < built.parameters < 80e6
