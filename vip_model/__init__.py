"""ViP-LLaVA as an engine: requests in, streamed answers out. No Qt.

Light names (the interface, templates, errors) import at once; the transformers engine, the
tiny-model builder and the doctor import torch/transformers, so they load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vip_model.engine import (
    MAX_NEW_TOKENS,
    Answer,
    CancelToken,
    Engine,
    EngineInfo,
    FinishReason,
    GenerationSettings,
    Request,
    Streamed,
    Timings,
    decode_image,
    encode_image,
)
from vip_model.errors import (
    CheckpointMismatch,
    DeviceUnavailable,
    InvalidRequest,
    ModelError,
    ModelUnavailable,
    OutOfMemory,
    QuantizationUnavailable,
)
from vip_model.templates import (
    DEFAULT_TEMPLATE,
    TEMPLATES,
    Template,
    Turn,
    build_prompt,
    get_template,
)

if TYPE_CHECKING:
    from vip_model.doctor import Check, diagnose
    from vip_model.hf import HFEngine, model_input_image
    from vip_model.loading import DEFAULT_MODEL
    from vip_model.tiny import TinyModel, make_config_stale, make_tiny_model

_LAZY = {
    "HFEngine": "vip_model.hf",
    "model_input_image": "vip_model.hf",
    "DEFAULT_MODEL": "vip_model.loading",
    "make_tiny_model": "vip_model.tiny",
    "make_config_stale": "vip_model.tiny",
    "TinyModel": "vip_model.tiny",
    "diagnose": "vip_model.doctor",
    "Check": "vip_model.doctor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vip_model' has no attribute {name!r}")


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TEMPLATE",
    "MAX_NEW_TOKENS",
    "TEMPLATES",
    "Answer",
    "CancelToken",
    "Check",
    "CheckpointMismatch",
    "DeviceUnavailable",
    "Engine",
    "EngineInfo",
    "FinishReason",
    "GenerationSettings",
    "HFEngine",
    "InvalidRequest",
    "ModelError",
    "ModelUnavailable",
    "OutOfMemory",
    "QuantizationUnavailable",
    "Request",
    "Streamed",
    "Template",
    "Timings",
    "TinyModel",
    "Turn",
    "build_prompt",
    "decode_image",
    "diagnose",
    "encode_image",
    "get_template",
    "make_config_stale",
    "make_tiny_model",
    "model_input_image",
]
