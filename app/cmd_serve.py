"""`vipstudio serve`: keep one ViP-LLaVA resident and answer many clients over HTTP."""

from __future__ import annotations

import click

from app.cli import CliError, reported
from app.model_options import load_options, spec_from_options
from vip_model.errors import ModelError


@click.command()
@load_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port."
)
@click.option(
    "--token",
    envvar="VIPSTUDIO_TOKEN",
    default=None,
    help="Clients must send 'Authorization: Bearer TOKEN' (also $VIPSTUDIO_TOKEN). "
    "Required unless --host is a loopback address.",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Most requests answered by one generate call.",
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="How long a request waits for others to share its batch.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Requests waiting beyond this get 503 + Retry-After.",
)
@click.option(
    "--max-new-tokens-limit",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Requests asking for more tokens get 422.",
)
@click.option(
    "--max-image-mb",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Image files larger than this many MiB (2**20 bytes, after base64 decoding) get 413.",
)
def serve(
    model: str | None,
    device: str,
    dtype: str,
    load_4bit: bool,
    load_8bit: bool,
    static_cache: bool,
    host: str,
    port: int,
    token: str | None,
    max_batch_size: int,
    max_wait_ms: float,
    max_queue: int,
    max_new_tokens_limit: int,
    max_image_mb: int,
) -> None:
    """Serve ViP-LLaVA: native /v1/ask and OpenAI-compatible /v1/chat/completions.

    \b
      vipstudio serve --model llava-hf/vip-llava-7b-hf --load-4bit
      vipstudio serve --model ./tiny --port 8123
      vipstudio serve --model ./vip-7b --host 0.0.0.0 --token s3cret
    """
    try:
        import uvicorn

        from vip_model.server import ServerConfig, check_bind, create_app, uvicorn_options
    except ImportError as exc:  # the core installs without the server's packages
        raise CliError(
            f"the server needs packages that are not installed ({exc}): "
            "pip install 'vip-studio[serve]'"
        ) from None
    from vip_model.engine_spec import build_engine

    with reported(ModelError):
        check_bind(host, token)
        spec = spec_from_options(
            {
                "model": model,
                "device": device,
                "dtype": dtype,
                "load_4bit": load_4bit,
                "load_8bit": load_8bit,
                "static_cache": static_cache,
            },
            max_batch_size=max_batch_size,
        )
        engine = build_engine(spec)
        info = engine.info()
        config = ServerConfig(
            model_name=spec.model,
            token=token,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            max_new_tokens=max_new_tokens_limit,
            max_image_bytes=max_image_mb * 1024 * 1024,
        )
    click.echo(
        f"serving {config.model_name} on http://{host}:{port} "
        f"({info.device or 'device ?'}, {info.dtype or 'dtype ?'}"
        f"{', ' + info.quantization if info.quantization else ''}); "
        f"{'token required' if token else 'no token (loopback only)'}",
        err=True,
    )
    try:
        uvicorn.run(
            create_app(engine, config),
            host=host,
            port=port,
            log_level="warning",
            **uvicorn_options(config),
        )
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def register(main: click.Group) -> None:
    main.add_command(serve)
