"""`vipstudio doctor` and `vipstudio make-tiny-model`: thin wrappers over `vip_model`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.cli import reported
from vip_model.errors import ModelError

_MARK = {"ok": "ok", "missing": "!!", "n/a": "--"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Hugging Face hub cache to inspect (default: $HF_HUB_CACHE or ~/.cache/huggingface/hub).",
)
def doctor(as_json: bool, cache_dir: Path | None) -> None:
    """Report what this machine can do with ViP-LLaVA, and how to fix what is missing.

    \b
    Checks versions, the device, CUDA and its memory, bitsandbytes (4/8-bit),
    flash-attn, RAM, hub access and the ViP-LLaVA models in the local cache.
    Loads no model and uses no network.
      vipstudio doctor
      vipstudio doctor --json
    """
    from vip_model.doctor import diagnose

    with reported(ModelError):
        checks = diagnose(str(cache_dir) if cache_dir else None)
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in checks], indent=2))
        return
    width = max(len(c.name) for c in checks)
    for c in checks:
        click.echo(f"{_MARK[c.status]}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            click.echo(f"    {'':<{width}}  fix: {c.fix}")


@click.command("make-tiny-model")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--scale",
    type=click.Choice(["tiny", "small"]),
    default="tiny",
    show_default=True,
    help="tiny: 56 px, 16 image tokens, ~0.6 M parameters (tests); "
    "small: 336 px, 576 image tokens, ~37 M parameters (benchmarks).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
@click.option("--overwrite", is_flag=True, help="Replace DIRECTORY if it is not empty.")
@click.option(
    "--stale-config",
    is_flag=True,
    help="Write the scalar vision_feature_layer -2 of the 7b-hf config (to test the correction).",
)
def make_tiny_model_cmd(
    directory: Path, scale: str, seed: int, overwrite: bool, stale_config: bool
) -> None:
    """Build a random ViP-LLaVA into DIRECTORY, fully offline.

    \b
    Same processor conventions as llava-hf/vip-llava-7b-hf (<image> and <pad>
    tokens, CLIP processor, LlavaProcessor, feature layers [-2,-5,-8,-11,6]);
    the answers are gibberish. Load it anywhere a model is asked for.
      vipstudio make-tiny-model out/tiny
      vipstudio make-tiny-model out/small --scale small --seed 1
    """
    from vip_model.tiny import make_config_stale, make_tiny_model

    with reported(ModelError):
        built = make_tiny_model(directory, scale, seed, overwrite=overwrite)  # type: ignore[arg-type]
        if stale_config:
            make_config_stale(built.path)
    click.echo(
        f"wrote {built.path} ({built.scale}: {built.parameters / 1e6:.2f} M parameters, "
        f"{built.image_tokens} image tokens, vocabulary {built.vocab_size}, "
        f"{built.build_s:.2f} s)",
        err=True,
    )


def register(main: click.Group) -> None:
    """Add this module's commands to the `vipstudio` group."""
    main.add_command(doctor)
    main.add_command(make_tiny_model_cmd)
