"""Click options that choose and configure the engine, shared by `ask`, `serve` and `gui`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from vip_model.loading import DEVICES, DTYPES
from vip_model.templates import DEFAULT_TEMPLATE, TEMPLATES

if TYPE_CHECKING:
    from vip_model.engine import Engine
    from vip_model.engine_spec import EngineSpec

FC = Callable[..., Any]


def _apply(fn: FC, options: list[Callable[[FC], FC]]) -> FC:
    for option in reversed(options):
        fn = option(fn)
    return fn


def load_options(fn: FC) -> FC:
    """--model, --device, --dtype, --load-4bit/--load-8bit, --compile."""
    return _apply(
        fn,
        [
            click.option(
                "--model",
                default=None,
                metavar="HUB_ID|FOLDER",
                help="ViP-LLaVA to load: a hub id (default llava-hf/vip-llava-7b-hf) or a local "
                "folder, e.g. one made by `vipstudio make-tiny-model`.",
            ),
            click.option(
                "--device",
                type=click.Choice(DEVICES),
                default="auto",
                show_default=True,
                help="Where the model runs: auto tries cuda, then mps, then cpu.",
            ),
            click.option(
                "--dtype",
                type=click.Choice(DTYPES),
                default="auto",
                show_default=True,
                help="auto: float16 on GPU, float32 on CPU.",
            ),
            click.option("--load-4bit", is_flag=True, help="4-bit NF4 weights (bitsandbytes)."),
            click.option("--load-8bit", is_flag=True, help="8-bit weights (bitsandbytes)."),
            click.option(
                "--compile",
                "static_cache",
                is_flag=True,
                help="Static KV cache; on CUDA the decoding step is compiled (torch.compile): "
                "a slow first answer, faster decoding after. Turns off the follow-up cache.",
            ),
        ],
    )


def generation_options(fn: FC) -> FC:
    """--template and the generation settings."""
    return _apply(
        fn,
        [
            click.option(
                "--template",
                type=click.Choice(list(TEMPLATES)),
                default=DEFAULT_TEMPLATE,
                show_default=True,
                help="Conversation form: llava_v1 is what ViP-LLaVA was trained with; hf_card "
                "is the model card's ###Human form.",
            ),
            click.option(
                "--temperature", type=float, default=0.0, show_default=True, help="0 = greedy."
            ),
            click.option(
                "--top-p",
                type=float,
                default=1.0,
                show_default=True,
                help="Nucleus sampling mass (with --temperature > 0).",
            ),
            click.option(
                "--max-new-tokens",
                type=int,
                default=512,
                show_default=True,
                help="Longest answer, in tokens.",
            ),
            click.option(
                "--num-beams", type=int, default=1, show_default=True, help="Beam search width."
            ),
            click.option(
                "--repetition-penalty",
                type=float,
                default=1.0,
                show_default=True,
                help="> 1 discourages repeating tokens.",
            ),
        ],
    )


def settings_from(kwargs: dict[str, Any], seed: int | None = None) -> Any:
    """GenerationSettings from the generation options (raises InvalidRequest when invalid)."""
    from vip_model.engine import GenerationSettings

    return GenerationSettings(
        temperature=kwargs["temperature"],
        top_p=kwargs["top_p"],
        max_new_tokens=kwargs["max_new_tokens"],
        num_beams=kwargs["num_beams"],
        repetition_penalty=kwargs["repetition_penalty"],
        seed=seed,
    )


def spec_from_options(kw: dict[str, Any], max_batch_size: int = 8) -> EngineSpec:
    """The engine the load options (and --server/--token, when present) describe."""
    from vip_model.engine_spec import EngineSpec, quantization_of
    from vip_model.loading import DEFAULT_MODEL

    server = kw.get("server")
    if server is not None:
        if kw["model"] is not None:
            raise click.UsageError("give --model or --server, not both")
        if kw.get("static_cache", False):
            raise click.UsageError("--compile applies to a local model: the server has its own")
    return EngineSpec(
        model=kw["model"] or DEFAULT_MODEL,
        device=kw["device"],
        dtype=kw["dtype"],
        quantization=quantization_of(kw["load_4bit"], kw["load_8bit"]),
        static_cache=kw.get("static_cache", False),
        server_url=server or "",
        server_token=kw.get("token") or "",
        max_batch_size=max_batch_size,
    )


def engine_from_options(kw: dict[str, Any], max_batch_size: int = 8) -> tuple[Engine, str]:
    """The engine the options ask for (:func:`vip_model.engine_spec.build_engine`), and the
    model name to record with its answers."""
    from vip_model.engine_spec import build_engine

    spec = spec_from_options(kw, max_batch_size)
    return build_engine(spec), spec.name
