"""Tiny random SAM and SAM 2 checkpoints, built offline, for tests and benchmarks.

They have the file set of the hub checkpoints (``config.json``, ``model.safetensors`` and the
image processor's config) and go through the same loader as a real folder
(:func:`vip_model.segment.load_segmenter`). Their masks are meaningless (random weights).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The input side of the tiny models (the real ones use 1024).
TINY_SIDE = 64


def make_tiny_sam(folder: str | Path, kind: str = "sam", seed: int = 0) -> Path:
    """Write a tiny random ``sam`` or ``sam2`` checkpoint into ``folder``; return it."""
    import torch

    from vip_model.tiny import quiet_transformers

    if kind not in ("sam", "sam2"):
        raise ValueError(f"kind must be 'sam' or 'sam2', got {kind!r}")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = _tiny_sam() if kind == "sam" else _tiny_sam2()
    with quiet_transformers():
        model.save_pretrained(path)
    if kind == "sam":
        _sam_processor().save_pretrained(path)
    else:
        # The hub layout of SAM 2 (flat preprocessor_config.json); saving it through transformers
        # would need Sam2ImageProcessor, i.e. torchvision.
        config = {
            "image_processor_type": "Sam2ImageProcessorFast",
            "processor_class": "Sam2Processor",
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.229, 0.224, 0.225],
            "mask_size": {"height": TINY_SIDE // 4, "width": TINY_SIDE // 4},
            "resample": 2,
            "rescale_factor": 1 / 255,
            "size": {"height": TINY_SIDE, "width": TINY_SIDE},
        }
        (path / "preprocessor_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def _sam_processor() -> Any:
    from transformers import SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    side, low = TINY_SIDE, TINY_SIDE // 4
    image_processor = SamImageProcessorPil(
        size={"longest_edge": side},
        pad_size={"height": side, "width": side},
        mask_size={"longest_edge": low},
        mask_pad_size={"height": low, "width": low},
    )
    return SamProcessor(image_processor=image_processor)


def _tiny_sam() -> Any:
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamModel,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=32,
        output_channels=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=TINY_SIDE,
        patch_size=16,
        mlp_dim=64,
        global_attn_indexes=[1],
        window_size=2,
        num_pos_feats=8,  # the prompt encoder's width (16) / 2
    )
    prompt = SamPromptEncoderConfig(
        hidden_size=16, image_size=TINY_SIDE, patch_size=16, mask_input_channels=4
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32,
        iou_head_hidden_dim=16,
    )  # fmt: skip
    config = SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    return SamModel(config).eval()


def _tiny_sam2() -> Any:
    from transformers import Sam2Config, Sam2Model
    from transformers.models.sam2.configuration_sam2 import (
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    # Four Hiera stages (strides 4, 8, 16, 32 of a 64-pixel input). A global-attention block
    # must not open a pooling stage (its window is 0), hence two blocks in stage 3.
    backbone = Sam2HieraDetConfig(
        hidden_size=8,
        image_size=[TINY_SIDE, TINY_SIDE],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    side = TINY_SIDE // 4
    vision = Sam2VisionConfig(
        backbone_config=backbone.to_dict(),
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[side, side], [side // 2, side // 2], [side // 4, side // 4]],
        fpn_hidden_size=32,
    )
    prompt = Sam2PromptEncoderConfig(
        hidden_size=32, image_size=TINY_SIDE, patch_size=16, mask_input_channels=4
    )
    decoder = Sam2MaskDecoderConfig(
        hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=16
    )
    config = Sam2Config(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    return Sam2Model(config).eval()
