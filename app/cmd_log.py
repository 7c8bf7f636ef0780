"""`vipstudio log stats|list|show|review|tag`: see and curate what the Q&A log holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.cli import CliError, reported
from data_gen.qalog.log import REVIEW_STATES, LogError, QALog, TurnRow, default_db_path

# A turn id as SQLite stores it: a larger number is a typing mistake, not a query.
TURN_ID = click.IntRange(min=1, max=2**63 - 1)


def db_option(fn: Any) -> Any:
    return click.option(
        "--db",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help=f"The log file (default {default_db_path()}, or $VIPSTUDIO_DB).",
    )(fn)


def open_log(db: Path | None, create: bool = True, read: bool = False) -> QALog:
    """The log for a command; ``read``: the command only reads, so a read-only log opens
    read-only instead of failing."""
    path = db if db is not None else default_db_path()
    if not create and not path.exists():
        raise CliError(f"{path}: no such log yet; ask a question first or pass --db")
    with reported(LogError):
        return QALog.open(path, mode="auto" if read else "rw")


def refuse_source_output(log: QALog, path: Path | None) -> None:
    """An output file of a command must not replace one of the log's source images (the other
    refusals are :func:`data_gen.safe_write.check_output_file`'s)."""
    if path is not None and str(path.resolve()) in set(log.source_paths()):
        raise CliError(
            f"refusing to replace {path}: it is a source image of the log; nothing was changed: "
            "choose another output file"
        )


@click.group("log")
def log_group() -> None:
    """See and curate the Q&A log (an SQLite file)."""


@log_group.command("stats")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also draw the counts and length histograms into this PNG.",
)
def stats(db: Path | None, as_json: bool, plot: Path | None) -> None:
    """Counts by review status, model, source, prompt kind and colour; length histograms.

    The same figures as `vipstudio report` (which also filters).

    \b
      vipstudio log stats --db my.sqlite
      vipstudio log stats --plot out/log.png
    """
    from data_gen.report import collect_stats
    from data_gen.report import plot as draw_plot

    with open_log(db, create=False, read=True) as log, reported(LogError):
        refuse_source_output(log, plot)
        data = collect_stats(log)
    if plot is not None:
        with reported(OSError):
            click.echo(f"plot: {draw_plot(data, plot)}", err=True)
    if as_json:
        click.echo(json.dumps(data.to_dict(), indent=2))
        return
    for line in data.lines():
        click.echo(line)


@log_group.command("list")
@db_option
@click.option("--review", type=click.Choice(REVIEW_STATES), multiple=True, help="Filter by review.")
@click.option("--model", default=None, help="Filter by model id.")
@click.option("--source", default=None, help="Filter by source (gui, cli, batch, import).")
@click.option("--tag", default=None, help="Filter by tag.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Turns to list."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_turns(
    db: Path | None,
    review: tuple[str, ...],
    model: str | None,
    source: str | None,
    tag: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The newest turns, one line each.

    \b
      vipstudio log list --review unreviewed --limit 50
    """
    with open_log(db, create=False, read=True) as log, reported(LogError):
        rows = log.turns(
            review=review or None,
            model=model,
            source=source,
            tag=tag,
            limit=limit,
            newest_first=True,
        )
    for row in rows:
        if as_json:
            click.echo(json.dumps(turn_summary(row)))
        else:
            q = _short(row.question, 50)
            a = _short(row.final_answer, 50)
            click.echo(f"{row.id:>6}  {row.review:<10}  {_where(row):<20}  {q}  →  {a}")


@log_group.command("show")
@db_option
@click.argument("turn_id", type=TURN_ID)
def show(db: Path | None, turn_id: int) -> None:
    """Everything stored about one turn, as JSON.

    \b
      vipstudio log show 42
    """
    with open_log(db, create=False, read=True) as log, reported(LogError):
        row = log.turn(turn_id)
    click.echo(json.dumps(turn_summary(row, full=True), indent=2, ensure_ascii=False))


@log_group.command("review")
@db_option
@click.argument("turn_id", type=TURN_ID)
@click.argument("status", type=click.Choice(REVIEW_STATES))
@click.option("--answer", "corrected", default=None, help="The corrected answer (with 'edited').")
def review_cmd(db: Path | None, turn_id: int, status: str, corrected: str | None) -> None:
    """Accept, edit or reject a turn's answer.

    \b
      vipstudio log review 42 accepted
      vipstudio log review 43 edited --answer "A blue mug on a saucer."
    """
    with open_log(db, create=False) as log, reported(LogError):
        log.review(turn_id, status, corrected)  # type: ignore[arg-type]
    click.echo(f"turn {turn_id}: {status}", err=True)


@log_group.command("tag")
@db_option
@click.argument("turn_id", type=TURN_ID)
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove the tags instead of adding them.")
def tag_cmd(db: Path | None, turn_id: int, tags: tuple[str, ...], remove: bool) -> None:
    """Add (or --remove) tags on a turn.

    \b
      vipstudio log tag 42 hard-case counting
    """
    with open_log(db, create=False) as log, reported(LogError):
        log.tag(turn_id, tags, remove=remove)


def turn_summary(row: TurnRow, full: bool = False) -> dict[str, Any]:
    """A turn as a JSON-ready dict (what `log list --json` and `log show` print)."""
    import overlays as ov

    out: dict[str, Any] = {
        "id": row.id,
        "session": row.session_id,
        "turn": row.idx,
        "image": row.image_path,
        "question": row.question,
        "answer": row.final_answer,
        "review": row.review,
        "model": row.model,
        "source": row.source,
        "created_at": row.created_at,
        "tags": row.tags,
    }
    if row.is_video:
        out.update(video=row.video_path, frame=row.frame_index, t=row.frame_time)
    if full:
        out.update(
            model_answer=row.answer,
            corrected_answer=row.corrected_answer,
            prompts=[ov.prompt_to_dict(p) for p in row.prompts],
            phrases=[ov.referring_phrase(p) for p in row.prompts],
            question_refs=[[r.prompt, r.start, r.end] for r in row.question_refs],
            template=row.template,
            settings=row.settings,
            timings=row.timings,
            prompt_tokens=row.prompt_tokens,
            answer_tokens=row.answer_tokens,
            finish_reason=row.finish_reason,
            request_id=row.request_id,
            image_sha256=row.image_sha256,
            image_size=[row.image_width, row.image_height],
        )
    return out


def _where(row: TurnRow) -> str:
    """The image's file name, or for a video turn the video's and the frame's time."""
    if row.is_video and row.video_path is not None:
        return f"{Path(row.video_path).name} @{row.frame_time or 0:.2f}s"
    return Path(row.image_path).name


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def register(main: click.Group) -> None:
    main.add_command(log_group)
