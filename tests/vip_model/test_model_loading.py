"""Loading: where from, the 7b-hf config correction, devices, dtypes, quantisation, errors."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import LlamaConfig, VipLlavaForConditionalGeneration

from vip_model import (
    DeviceUnavailable,
    GenerationSettings,
    InvalidRequest,
    ModelError,
    ModelUnavailable,
    OutOfMemory,
    QuantizationUnavailable,
    Request,
    make_config_stale,
    make_tiny_model,
)
from vip_model.hf import HFEngine
from vip_model.loading import (
    bitsandbytes_status,
    map_oom,
    pick_attention,
    projector_feature_layers,
)
from vip_model.tiny import VIP_FEATURE_LAYERS, build_config, build_processor

Noise = Callable[..., Image.Image]
GREEDY = GenerationSettings(max_new_tokens=16)
HUB_ID = "llava-hf/vip-llava-7b-hf"
BNB_USABLE, BNB_WHY = bitsandbytes_status()


def _request(noise: Noise) -> Request:
    return Request(noise(60, 40, seed=9), "What is it?", settings=GREEDY)


def _fake_hub_cache(root: Path, model: Path, repo_id: str = HUB_ID) -> Path:
    """A Hugging Face hub cache holding ``model`` as the ``main`` revision of ``repo_id``."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(model, repo / "snapshots" / commit)
    return root


# ---------------------------------------------------------------- not found


@pytest.mark.parametrize("name", ["/no/such/folder", "./models/missing", "~/nope-vip"])
def test_a_missing_folder_is_unavailable_with_the_fix(name: str) -> None:
    with pytest.raises(
        ModelUnavailable,
        match=r"no such folder.*huggingface-cli download llava-hf/vip-llava-7b-hf.*--model",
    ):
        HFEngine(name)


def test_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"no config\.json"):
        HFEngine(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelUnavailable, match="is a file"):
        HFEngine(str(tmp_path / "weights.bin"))
    LlamaConfig(hidden_size=64, num_hidden_layers=1).save_pretrained(tmp_path)
    with pytest.raises(ModelUnavailable, match="'llama' model, not ViP-LLaVA"):
        HFEngine(str(tmp_path))


def test_an_uncached_hub_id_offline_is_unavailable_with_the_fix(tmp_path: Path) -> None:
    for local in (True, None):  # explicit, then from HF_HUB_OFFLINE (set in tests/conftest.py)
        with pytest.raises(
            ModelUnavailable, match=r"not in the local Hugging Face cache.*huggingface-cli download"
        ):
            HFEngine(
                "someone/vip-llava-nonexistent", local_files_only=local, cache_dir=str(tmp_path)
            )


def test_a_hub_id_loads_from_the_local_cache_without_network(
    tmp_path: Path, tiny_model_dir: Path, engine: HFEngine, noise: Noise
) -> None:
    cache = _fake_hub_cache(tmp_path / "hub", tiny_model_dir)
    with HFEngine(HUB_ID, cache_dir=str(cache)) as e:
        assert e.info().model == HUB_ID
        assert e.ask(_request(noise)).text == engine.ask(_request(noise)).text


# ---------------------------------------------------------------- the 7b-hf config correction


def test_a_stale_scalar_feature_layer_is_corrected(
    tmp_path: Path, engine: HFEngine, noise: Noise
) -> None:
    stale = make_tiny_model(tmp_path / "stale", seed=0)  # same weights as the session model
    make_config_stale(stale.path)
    with HFEngine(str(stale.path)) as e:
        info = e.info()
        assert info.config_corrected and info.vision_feature_layer == VIP_FEATURE_LAYERS
        assert e.ask(_request(noise)).text == engine.ask(_request(noise)).text


def test_the_correction_also_applies_through_the_hub_cache(
    tmp_path: Path, tiny_model_dir: Path, noise: Noise, engine: HFEngine
) -> None:
    cache = _fake_hub_cache(tmp_path / "hub", tiny_model_dir)
    make_config_stale(next((cache / "models--llava-hf--vip-llava-7b-hf" / "snapshots").iterdir()))
    with HFEngine(HUB_ID, cache_dir=str(cache)) as e:
        assert e.info().config_corrected
        assert e.ask(_request(noise)).text == engine.ask(_request(noise)).text


def _save_with_layers(folder: Path, layers: int | list[int]) -> Path:
    processor = build_processor(400, 56)
    config = build_config("tiny", processor.tokenizer)
    config.vision_feature_layer = layers
    VipLlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_a_genuine_single_layer_model_is_left_alone(tmp_path: Path, noise: Noise) -> None:
    folder = _save_with_layers(tmp_path / "one", -2)
    assert projector_feature_layers(folder, 64) == 1
    with HFEngine(str(folder)) as e:
        assert not e.info().config_corrected and e.info().vision_feature_layer == (-2,)
        assert e.ask(_request(noise)).completion_tokens > 0


def test_a_scalar_config_with_an_unexpected_projector_names_the_fix(tmp_path: Path) -> None:
    folder = _save_with_layers(tmp_path / "three", [-2, -5, 6])
    make_config_stale(folder)
    assert projector_feature_layers(folder, 64) == 3
    with pytest.raises(ModelError, match="concatenates 3 vision layers"):
        HFEngine(str(folder))


# ---------------------------------------------------------------- devices, dtypes, attention


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_asked_without_a_gpu() -> None:
    with pytest.raises(DeviceUnavailable, match="use --device cpu"):
        HFEngine("/does/not/matter", device="cuda", lazy=True).load()


def test_option_errors(tiny_model_dir: Path) -> None:
    with pytest.raises(InvalidRequest, match="not both"):
        HFEngine(str(tiny_model_dir), load_4bit=True, load_8bit=True)
    with pytest.raises(InvalidRequest, match="device 'tpu'"):
        HFEngine(str(tiny_model_dir), device="tpu")
    with pytest.raises(DeviceUnavailable, match="float16 is not usable on cpu"):
        HFEngine(str(tiny_model_dir), device="cpu", dtype="float16")


def test_bfloat16_on_cpu(tiny_model_dir: Path, noise: Noise) -> None:
    with HFEngine(str(tiny_model_dir), dtype="bfloat16") as e:
        assert e.info().dtype == "bfloat16"
        assert e.loaded.model.dtype == torch.bfloat16
        assert e.ask(_request(noise)).completion_tokens > 0


def test_attention_choice() -> None:
    assert pick_attention("cpu", "float32") == "sdpa"
    assert pick_attention("cpu", "float32", "eager") == "eager"
    if not _has_flash_attn():
        assert pick_attention("cuda", "float16") == "sdpa"


def _has_flash_attn() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def test_out_of_memory_errors_become_named_ones() -> None:
    oom = map_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), "loading")
    assert isinstance(oom, OutOfMemory) and "--load-4bit" in str(oom)
    assert isinstance(
        map_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory"), "x"), OutOfMemory
    )
    assert isinstance(map_oom(MemoryError(), "x"), OutOfMemory)
    assert map_oom(RuntimeError("shape mismatch"), "x") is None


# ---------------------------------------------------------------- quantisation


def test_quantised_load_without_bitsandbytes_says_how_to_install_it(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    with pytest.raises(QuantizationUnavailable, match=r"pip install 'vip-studio\[gpu\]'"):
        HFEngine(str(tiny_model_dir), load_4bit=True)


@pytest.mark.skipif(not BNB_USABLE, reason=f"bitsandbytes {BNB_WHY}")
@pytest.mark.parametrize("bits", [4, 8])
def test_quantised_load_on_cpu(bits: int, tiny_model_dir: Path, noise: Noise) -> None:
    import bitsandbytes as bnb

    layer_type = bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt
    with HFEngine(str(tiny_model_dir), load_4bit=bits == 4, load_8bit=bits == 8) as e:
        assert e.info().quantization == f"{bits}bit"
        model = e.loaded.model
        assert isinstance(model.model.language_model.layers[0].self_attn.q_proj, layer_type)
        answer = e.ask(_request(noise))
        assert answer.completion_tokens > 0 and answer.finish_reason in ("stop", "length")
        stream = e.stream(_request(noise))
        assert "".join(stream) == stream.answer.text


@pytest.mark.skipif(not BNB_USABLE, reason=f"bitsandbytes {BNB_WHY}")
@pytest.mark.parametrize("bits", [4, 8])
def test_quantisation_keeps_the_vision_tower_and_lm_head(
    bits: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # "small": hidden sizes >= 64 everywhere, so the vision tower could be quantised (4-bit
    # refuses narrower layers); the original quantised only the language model and projector.
    import bitsandbytes as bnb

    folder = tmp_path_factory.getbasetemp() / "small-for-bnb"
    if not folder.exists():
        make_tiny_model(folder, "small", seed=0)
    layer_type = bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt
    with HFEngine(str(folder), load_4bit=bits == 4, load_8bit=bits == 8) as e:
        model = e.loaded.model
        kinds: dict[str, set[str]] = {}
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear):
                part = name.split(".")[1] if name.startswith("model.") else name
                kinds.setdefault(part, set()).add(
                    "quantised" if isinstance(module, layer_type) else type(module).__name__
                )
    assert kinds == {
        "vision_tower": {"Linear"},
        "multi_modal_projector": {"quantised"},
        "language_model": {"quantised"},
        "lm_head": {"Linear"},
    }
