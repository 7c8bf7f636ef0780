"""Which engine to run, as one typed value, and the one factory that builds it.

The CLI (``--model/--device/--dtype/--load-4bit/--load-8bit/--compile/--server/--token``) and
the desktop app's settings (model, device, quantization, server URL and token) both describe an
:class:`EngineSpec`; :func:`build_engine` turns it into a local
:class:`~vip_model.hf.HFEngine` or a :class:`~vip_model.client.RemoteEngine`. No torch here: the
transformers engine is imported only when a local one is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from vip_model.engine import Engine
from vip_model.errors import InvalidRequest
from vip_model.loading import DEFAULT_MODEL, DEVICES, DTYPES

QUANTIZATIONS: Final = ("none", "4bit", "8bit")


@dataclass(frozen=True)
class EngineSpec:
    """A local model (hub id or folder, where and how to load it) or a server to ask.

    ``server_url`` set means remote: the load options then do not apply. ``local_files_only``
    None lets the loader decide (see :class:`~vip_model.loading.LoadOptions`); ``retries`` is
    how often a remote call is retried on a connection failure.
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"
    static_cache: bool = False
    server_url: str = ""
    server_token: str = ""
    max_batch_size: int = 8
    local_files_only: bool | None = None
    retries: int = 3
    #: Shown instead of the model id (e.g. to say that a model is random).
    note: str = ""

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise InvalidRequest(
                f"quantization {self.quantization!r}: use one of {', '.join(QUANTIZATIONS)}"
            )
        if self.device.split(":")[0] not in DEVICES:
            raise InvalidRequest(f"device {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.dtype not in DTYPES:
            raise InvalidRequest(f"dtype {self.dtype!r}: use one of {', '.join(DTYPES)}")
        if self.max_batch_size < 1:
            raise InvalidRequest("max_batch_size must be at least 1")
        if self.remote and self.static_cache:
            raise InvalidRequest("the static cache (--compile) applies to a local model only")

    @property
    def remote(self) -> bool:
        return bool(self.server_url)

    @property
    def name(self) -> str:
        """The model name the log records with its answers: the server URL, else the model."""
        return self.server_url if self.remote else self.model

    @property
    def label(self) -> str:
        """A short name to show: the note, the server, or the model folder's name or hub id."""
        if self.note:
            return self.note
        if self.remote:
            return f"server {self.server_url}"
        return Path(self.model).name if Path(self.model).is_dir() else self.model


def quantization_of(load_4bit: bool, load_8bit: bool) -> str:
    """The :attr:`EngineSpec.quantization` the CLI's two flags ask for."""
    if load_4bit and load_8bit:
        raise InvalidRequest("choose one of 4-bit and 8-bit loading, not both")
    return "4bit" if load_4bit else "8bit" if load_8bit else "none"


def build_engine(spec: EngineSpec, *, lazy: bool = False) -> Engine:
    """The engine ``spec`` describes. A local one loads now unless ``lazy`` (then on first use,
    or by its ``load()``); a remote one only connects when first asked."""
    if spec.remote:
        from vip_model.client import RemoteEngine

        # The server batches what arrives together: send as many requests at once as a batch.
        return RemoteEngine(
            spec.server_url,
            spec.server_token or None,
            retries=spec.retries,
            max_parallel=spec.max_batch_size,
        )
    from vip_model.hf import HFEngine

    return HFEngine(
        spec.model,
        device=spec.device,
        dtype=spec.dtype,
        load_4bit=spec.quantization == "4bit",
        load_8bit=spec.quantization == "8bit",
        local_files_only=spec.local_files_only,
        max_batch_size=spec.max_batch_size,
        static_cache=spec.static_cache,
        lazy=lazy,
    )


__all__ = ["QUANTIZATIONS", "EngineSpec", "build_engine", "quantization_of"]
