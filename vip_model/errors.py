"""Named exceptions of the model engine. Each message says what happened and what to do.

Image problems reuse :mod:`overlays`' own errors (``ImageUnreadable``, ``ImageTooLarge``) and
malformed visual prompts raise ``overlays.InvalidPrompt``: one error per problem, whoever meets it.
"""

from __future__ import annotations

#: What the user runs on a machine that has internet access to fetch the default model.
DOWNLOAD_HINT = (
    "download it with `huggingface-cli download llava-hf/vip-llava-7b-hf` on a machine with "
    "internet (then copy the folder, or the Hugging Face cache, here), or pass a local folder "
    "with --model"
)


class ModelError(Exception):
    """Base class of every error raised by `vip_model`."""


class ModelUnavailable(ModelError):
    """The model is neither a readable local folder nor fetchable from the hub."""


class DeviceUnavailable(ModelError):
    """The device (or the dtype on that device) that was asked for cannot be used here."""


class OutOfMemory(ModelError):
    """The accelerator (or the machine) ran out of memory while loading or generating."""


class QuantizationUnavailable(ModelError):
    """A 4-bit/8-bit load was asked for, but bitsandbytes is missing or cannot run here."""


class CheckpointMismatch(ModelError):
    """The saved weights do not fit the model: some would be missing (left random) or unused."""


class InvalidRequest(ModelError, ValueError):
    """A request or its settings are malformed: empty question, unknown key, value out of range."""


__all__ = [
    "DOWNLOAD_HINT",
    "CheckpointMismatch",
    "DeviceUnavailable",
    "InvalidRequest",
    "ModelError",
    "ModelUnavailable",
    "OutOfMemory",
    "QuantizationUnavailable",
]
