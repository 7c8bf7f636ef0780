"""`vipstudio export|import|report`: the log as training data, annotations in, statistics out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from app.cli import CliError, reported
from app.cmd_log import db_option, open_log, refuse_source_output
from data_gen.base import FORMATS
from data_gen.errors import DataGenError
from data_gen.qalog.log import REVIEW_STATES, LogError

EXPORTABLE = tuple(s for s in REVIEW_STATES if s != "rejected")


def _filters(fn: Any) -> Any:
    """The turn filters shared by `export` and `report`."""
    for option in reversed(
        [
            click.option("--model", default=None, help="Only turns answered by this model id."),
            click.option(
                "--source", default=None, help="Only turns from gui, cli, batch or import."
            ),
            click.option("--tag", default=None, help="Only turns with this tag."),
            click.option("--since", default=None, help="Only turns logged at or after (UTC date)."),
            click.option("--until", default=None, help="Only turns logged before (UTC date)."),
        ]
    ):
        fn = option(fn)
    return fn


@click.command("export")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="vip-llava: raw images + bboxes (the trainer draws); the others: prompts drawn in "
    "(swift: ms-swift JSON Lines with grounding objects). Video turns: videorefer (raw video "
    "+ per-frame masks), llama-factory-video, llava-video (burned-in clips), streaming "
    "(VideoLLM-online timelines).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The dataset folder (built next to it, moved in place when complete).",
)
@click.option(
    "--review",
    type=click.Choice(EXPORTABLE),
    multiple=True,
    help="Only turns with this review status (repeatable; default: all but rejected).",
)
@_filters
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of images in the validation split.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the split and of augmentation."
)
@click.option(
    "--augment",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Per region conversation, K more samples redrawn with other prompt kinds.",
)
@click.option(
    "--images",
    "images_mode",
    type=click.Choice(["copy", "link", "absolute"]),
    default="copy",
    show_default=True,
    help="Raw images (and videorefer's videos): copy into the dataset, symlink, or refer to "
    "their absolute path.",
)
@click.option(
    "--rendered-format",
    type=click.Choice(["auto", "png", "jpeg"]),
    default="auto",
    show_default=True,
    help="File type of rendered images (auto: like the source).",
)
@click.option(
    "--id-prefix",
    default=None,
    help="Record ids are PREFIX-SESSION-TURN (also the dataset name; default vipstudio). "
    "vip-llava: chosen per record by region count (refcocog-gpt4v: one region, vg_rel-gpt4v: "
    "two or more, vipstudio: none); a prefix given here is used for all and records it "
    "cannot carry are skipped.",
)
@click.option(
    "--shard-mb",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="hf: start a new Parquet shard past this size.",
)
@click.option(
    "--video-fps",
    type=click.FloatRange(0, 60, min_open=True),
    default=2.0,
    show_default=True,
    help="Video formats: frames per second of the clips (at most the video's own).",
)
@click.option(
    "--video-size",
    type=click.IntRange(min=0),
    default=640,
    show_default=True,
    help="Video formats: longest side of the clips in pixels (0: the video's size).",
)
@click.option(
    "--context",
    type=click.FloatRange(0, 60),
    default=1.0,
    show_default=True,
    help="llama-factory-video, llava-video: seconds of clip before and after the asked frame.",
)
@click.option(
    "--llava-flavor",
    type=click.Choice(["llama-vid", "video-chatgpt"]),
    default="llama-vid",
    show_default=True,
    help="llava-video: LLaMA-VID reads the clips with <image>; Video-ChatGPT reads <id>.pkl "
    "features made from them, with <video>.",
)
@click.option(
    "--only-changes",
    is_flag=True,
    help="streaming: an answer only where it differs from the previous one.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Processes checking and rendering images, or making clips (0: every core).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing --out once the new one is complete."
)
@click.option(
    "--strict",
    is_flag=True,
    help="Stop at the first unusable image or prompt instead of skipping it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
def export_cmd(
    db: Path | None,
    fmt: str,
    out: Path,
    review: tuple[str, ...],
    model: str | None,
    source: str | None,
    tag: str | None,
    since: str | None,
    until: str | None,
    val_fraction: float,
    seed: int,
    augment: int,
    images_mode: str,
    rendered_format: str,
    id_prefix: str | None,
    shard_mb: int,
    video_fps: float,
    video_size: int,
    context: float,
    llava_flavor: str,
    only_changes: bool,
    workers: int,
    overwrite: bool,
    strict: bool,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Write the logged turns as a training set in a trainer's format.

    Corrected answers replace the model's, rejected turns are left out, turns on the same image
    and prompts in one session become one conversation, exact duplicates are dropped, and the
    split is by image (video formats: by video). A summary says what was written and skipped
    (also in summary.json).

    \b
      vipstudio export --db log.sqlite --format vip-llava --out data/vip --val-fraction 0.1
      vipstudio export --format hf --out data/hf --review accepted --review edited --augment 2
      vipstudio export --format llama-factory-video --out data/lfv --video-fps 2 --augment 1
    """
    from data_gen.base import ExportOptions
    from data_gen.export import export
    from data_gen.records import Selection

    with reported(DataGenError, LogError):
        options = ExportOptions(
            format=fmt,
            out=out,
            selection=Selection(
                review=review or Selection().review,
                model=model,
                source=source,
                tag=tag,
                since=since,
                until=until,
            ),
            val_fraction=val_fraction,
            seed=seed,
            augment=augment,
            images=images_mode,  # type: ignore[arg-type]
            overwrite=overwrite,
            strict=strict,
            workers=workers,
            progress=sys.stderr.isatty() if progress is None else progress,
            rendered_format=rendered_format,  # type: ignore[arg-type]
            id_prefix=id_prefix,
            shard_mb=shard_mb,
            video_fps=video_fps,
            video_size=video_size,
            context=context,
            llava_flavor=llava_flavor,
            only_changes=only_changes,
        )
        with open_log(db, create=False, read=True) as log:
            summary = export(log, options)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        for line in summary.lines():
            click.echo(line, err=True)


@click.command("import")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["coco", "labelme", "vip-llava"]),
    required=True,
    help="The annotation file's format.",
)
@click.argument("file", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--images-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the images are (default: the file's folder).",
)
@click.option("--dry-run", is_flag=True, help="Check and report; write nothing.")
@click.option("--strict", is_flag=True, help="Import nothing if any entry is invalid.")
@click.option("--again", is_flag=True, help="Import a file that was imported before.")
@click.option(
    "--queries",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write one `ask --batch` query per imported region to this JSONL file.",
)
@click.option(
    "--question",
    default="Describe <region>.",
    show_default=True,
    help="The queries' question; <region> becomes the referring phrase.",
)
@click.option(
    "--shape",
    type=click.Choice(
        ["rectangle", "ellipse", "point", "triangle", "arrow", "scribble", "mask", "contour"]
    ),
    default="rectangle",
    show_default=True,
    help="How the queries draw each region.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of drawn shapes.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def import_cmd(
    db: Path | None,
    fmt: str,
    file: Path,
    images_dir: Path | None,
    dry_run: bool,
    strict: bool,
    again: bool,
    queries: Path | None,
    question: str,
    shape: str,
    seed: int,
    as_json: bool,
) -> None:
    """Bring boxes and polygons from COCO, LabelMe or ViP-LLaVA files into the log as regions.

    Invalid entries are reported and skipped; everything else is written in one transaction.
    ViP-LLaVA entries also bring their conversations as turns (accepts `bbox` or `bboxes`).
    With --queries, each region becomes a question for `vipstudio ask --batch`.

    \b
      vipstudio import --format coco annotations/instances_val.json --images-dir val2017 \\
          --queries regions.jsonl --question "What is <region> doing?"
    """
    from data_gen.importers import import_file
    from data_gen.queries import check_query_options, region_queries, write_jsonl
    from data_gen.safe_write import check_output_file

    if queries is not None and dry_run:
        raise click.UsageError("--queries writes the imported regions: it needs a real import")
    inputs = [file, *([db] if db is not None else [])]
    with reported(DataGenError, LogError, OSError), open_log(db) as log:
        if queries is not None:  # check the question and the output before importing anything
            check_query_options(question, shape)
            check_output_file(queries, [*inputs, log.path])
            refuse_source_output(log, queries)
        report = import_file(
            log, fmt, file, images_dir=images_dir, dry_run=dry_run, strict=strict, again=again
        )
        written = None
        if queries is not None and report.import_id is not None:
            written = write_jsonl(
                queries,
                region_queries(
                    log, import_id=report.import_id, question=question, shape=shape, seed=seed
                ),
                protect=[*inputs, log.path],
            )
    if as_json:
        data = {**report.__dict__, "queries": written}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line, err=True)
        if written is not None:
            click.echo(f"wrote {written} queries to {queries}", err=True)
    if not report.regions and not report.turns and report.invalid:
        raise CliError(f"nothing could be imported from {file}: every entry is invalid")


@click.command("report")
@db_option
@click.option(
    "--review",
    type=click.Choice(REVIEW_STATES),
    multiple=True,
    help="Only turns with this review status (repeatable; default: all).",
)
@_filters
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also draw the figures into this PNG file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def report_cmd(
    db: Path | None,
    review: tuple[str, ...],
    model: str | None,
    source: str | None,
    tag: str | None,
    since: str | None,
    until: str | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """Counts by prompt kind, colour, review, model and source, and Q/A length histograms.

    \b
      vipstudio report --db log.sqlite --plot out/report.png
    """
    from data_gen.report import collect_stats
    from data_gen.report import plot as draw

    with reported(DataGenError, LogError), open_log(db, create=False, read=True) as log:
        refuse_source_output(log, plot)
        stats = collect_stats(
            log, review=review, model=model, source=source, tag=tag, since=since, until=until
        )
    if plot is not None:
        with reported(OSError):
            draw(stats, plot)
    if as_json:
        click.echo(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False))
    else:
        for line in stats.lines():
            click.echo(line)
        if plot is not None:
            click.echo(f"plot: {plot}", err=True)


def register(main: click.Group) -> None:
    main.add_command(export_cmd)
    main.add_command(import_cmd)
    main.add_command(report_cmd)
