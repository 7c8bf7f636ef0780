"""The command-line side of ``ask --batch --ray``: its options and the run (see app.batch_ray)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from app.cli import CliError, reported

FC = TypeVar("FC", bound=Callable[..., Any])


def ray_options(fn: FC) -> FC:
    """``--ray``, ``--address``, ``--actors``, ``--gpus-per-actor``, ``--shard-size``."""
    options = [
        click.option(
            "--ray",
            "use_ray",
            is_flag=True,
            help="Run --batch on Ray (the [cluster] extra): --out is then a folder of shards.",
        ),
        click.option(
            "--address",
            default=None,
            metavar="ray://HOST:10001",
            help="The Ray cluster for --ray (default: $RAY_ADDRESS, else a local Ray).",
        ),
        click.option(
            "--actors",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="With --ray: engines (actors) answering in parallel, one model each.",
        ),
        click.option(
            "--gpus-per-actor",
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help="With --ray: GPUs each actor reserves (1 to give each its own GPU).",
        ),
        click.option(
            "--shard-size",
            type=click.IntRange(min=1),
            default=1024,
            show_default=True,
            help="With --ray: records per output shard.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def check_ray_flags(kw: dict[str, Any]) -> None:
    """Ray-only flags without --ray are a usage error (exit 2)."""
    if kw["use_ray"]:
        return
    given = [
        flag
        for flag, key, default in (
            ("--address", "address", None),
            ("--actors", "actors", 1),
            ("--gpus-per-actor", "gpus_per_actor", 0.0),
            ("--shard-size", "shard_size", 1024),
        )
        if kw[key] != default
    ]
    if given:
        raise click.UsageError(f"{', '.join(given)} only work(s) with --batch … --ray")


def run_ray_batch(kw: dict[str, Any], exit_partial: int) -> None:
    """``ask --batch FILE --out FOLDER --ray``: report as the local batch does."""
    from tqdm import tqdm

    from app.batch_files import BatchFileError, check_files
    from app.batch_query import count_lines
    from app.batch_ray import RayOptions, RayRunFailed, RayUnavailable, ShardError, run_ray
    from app.model_options import engine_from_options, settings_from
    from data_gen.qalog.log import LogError, QALog, default_db_path
    from vip_model.errors import ModelError

    queries: Path = kw["batch_file"]
    out: Path = kw["out"]
    db = None if kw["no_log"] else Path(kw["db"] or default_db_path())
    try:
        check_files(queries, out / "part.jsonl", db)  # the queries readable; out not the log
    except BatchFileError as exc:
        raise CliError(str(exc)) from None
    if out.exists() and not out.is_dir():
        raise click.UsageError(f"--out {out} is a file: with --ray, --out is a folder of shards")
    engine_kw = {
        k: kw.get(k)
        for k in ("model", "device", "dtype", "load_4bit", "load_8bit", "server", "token")
    }
    engine_kw["static_cache"] = kw.get("static_cache", False)
    factory = functools.partial(engine_from_options, engine_kw, max_batch_size=kw["batch_size"])
    options = RayOptions(
        actors=kw["actors"],
        gpus_per_actor=kw["gpus_per_actor"],
        address=kw["address"],
        batch_size=kw["batch_size"],
        shard_size=kw["shard_size"],
    )
    with reported(ModelError, LogError, BatchFileError, RayUnavailable, RayRunFailed, ShardError):
        log = None if db is None else QALog.open(db)
        total = count_lines(queries) if queries.suffix.lower() != ".parquet" else None
        bar = tqdm(total=total, unit="q", desc="asking", file=sys.stderr, disable=None)
        try:
            summary = run_ray(
                queries,
                out,
                factory,
                options=options,
                log=log,
                template=kw["template"],
                settings=settings_from(kw),
                max_pixels=kw["max_pixels"],
                progress=bar.update,
            )
        finally:
            bar.close()
            if log is not None:
                log.close()
    click.echo(f"{out}: {summary.text()}", err=True)
    if summary.errors:
        sys.exit(exit_partial)


__all__ = ["check_ray_flags", "ray_options", "run_ray_batch"]
