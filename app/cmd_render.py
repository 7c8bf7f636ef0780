"""`vipstudio render`: draw visual prompts on an image, as the model will see them."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from PIL import Image

import overlays as ov
from app.cli import CliError, reported
from data_gen.safe_write import OutputRefused, atomic_write, check_output_file
from vip_model.prepare import region_prompt

SHAPES = list(ov.KINDS)

# A plain decimal number: no "1_0", "inf", "nan" or hex, which Python's float() would accept.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# A colour as typed: a name, R,G,B of plain integers, or #rrggbb (int() alone also takes "1_0").
_COLOR = re.compile(r"[A-Za-z]+|\s*\d{1,3}\s*(?:,\s*\d{1,3}\s*){2}|#[0-9A-Fa-f]{6}")
# Pixel coordinates beyond this are typing mistakes (the largest image allowed has 1e8 pixels).
MAX_COORDINATE = 1e8


def parse_numbers(text: str, count: int | None, what: str) -> list[float]:
    """``"1,2,3"`` to floats, with an error naming the option and the expected form.

    Strict: every item is a plain decimal number (spaces around it allowed), none empty, each
    finite and within ±:data:`MAX_COORDINATE`."""
    items = [v.strip() for v in text.split(",")]
    for item in items:
        if not _NUMBER.fullmatch(item):
            shown = "an empty value" if item == "" else repr(item)
            raise click.BadParameter(
                f"{text!r} is not a list of numbers separated by commas ({shown} is not a "
                "plain number), e.g. 10,20,110,220",
                param_hint=what,
            )
    values = [float(v) for v in items]
    if count is not None and len(values) != count:
        raise click.BadParameter(
            f"{text!r} has {len(values)} numbers, expected {count}", param_hint=what
        )
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values):
        raise click.BadParameter(
            f"{text!r}: coordinates are pixels and must lie within ±{MAX_COORDINATE:g}",
            param_hint=what,
        )
    return values


@contextmanager
def option_value(what: str) -> Iterator[None]:
    """A prompt the command line itself describes wrongly is a usage error (exit 2) naming
    the option; a prompt that does not fit the image stays a data error (exit 1)."""
    try:
        yield
    except ov.PromptOutsideImage:
        raise
    except ov.InvalidPrompt as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def build_prompts(
    image_size: tuple[int, int],
    bboxes: tuple[str, ...],
    shape: str,
    polygons: tuple[str, ...],
    arrows: tuple[str, ...],
    points: tuple[str, ...],
    colors: tuple[str, ...],
    alpha: int | None,
    width: float | None,
    seed: int,
    prompts_file: Path | None,
    labels: tuple[str, ...] = (),
) -> list[ov.Prompt]:
    """The prompts the render/ask flags describe (shared by `render` and `ask`).

    Prompts read from ``prompts_file`` keep their own style unless a style option is given.
    """
    out: list[ov.Prompt] = []
    if prompts_file is not None:
        try:
            text = prompts_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{prompts_file}: cannot read prompts ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise CliError(
                f"{prompts_file} is not a text file: --prompts takes the JSON file written by "
                "`vipstudio render --save-prompts`"
            ) from None
        out.extend(ov.loads(text))
    from_file = len(out)
    polys = [parse_numbers(p, None, "--polygon") for p in polygons]
    for text in bboxes:
        x1, y1, x2, y2 = parse_numbers(text, 4, "--bbox")
        if x2 <= x1 or y2 <= y1:
            raise click.BadParameter(
                f"{text!r}: give the top-left corner then the bottom-right one (x1 < x2, y1 < y2)",
                param_hint="--bbox",
            )
        rings = None
        if shape in ("mask", "contour") and polys:
            with option_value("--polygon"):
                rings = (ov.points_from_flat(polys.pop(0)),)
        with option_value("--polygon" if rings else "--bbox"):
            region = ov.Region((x1, y1, x2, y2), polygons=rings)
        out.append(region_prompt(shape, region, image_size, seed=seed, index=len(out) - from_file))
    for flat in polys:
        with option_value("--polygon"):
            region = ov.Region.from_polygons([ov.points_from_flat(flat)])
        kind = shape if shape in ("mask", "contour") else "mask"
        out.append(region_prompt(kind, region, image_size, seed=seed, index=len(out) - from_file))
    for text in arrows:
        x1, y1, x2, y2 = parse_numbers(text, 4, "--arrow")
        with option_value("--arrow"):
            out.append(ov.Arrow((x1, y1), (x2, y2)))
    for text in points:
        x, y = parse_numbers(text, 2, "--point")
        out.append(ov.Point((x, y)))
    if not out:
        raise click.UsageError(
            "nothing to draw: give --bbox, --polygon, --arrow, --point or --prompts"
        )
    return _styled(out, colors, alpha, width, labels, from_file)


def _styled(
    prompts: list[ov.Prompt],
    colors: tuple[str, ...],
    alpha: int | None,
    width: float | None,
    labels: tuple[str, ...],
    from_file: int = 0,
) -> list[ov.Prompt]:
    from dataclasses import replace

    if len(colors) > 1 and len(colors) != len(prompts):
        raise click.BadParameter(
            f"{len(colors)} colours for {len(prompts)} prompts: "
            "give one colour for all, or one per prompt",
            param_hint="--color",
        )
    if labels and len(labels) not in (1, len(prompts)):
        raise click.BadParameter(
            f"{len(labels)} labels for {len(prompts)} prompts: give one, or one per prompt",
            param_hint="--label",
        )
    for text in colors:
        if not _COLOR.fullmatch(text.strip()):
            raise click.BadParameter(
                f"{text!r} is not a colour: give a palette name, R,G,B (integers 0..255) or "
                "#rrggbb",
                param_hint="--color",
            )
    styled: list[ov.Prompt] = []
    for i, p in enumerate(prompts):
        color: str | ov.style.RGB = (
            colors[0] if len(colors) == 1 else (colors[i] if colors else p.style.color)
        )
        w = width if width is not None else p.style.width
        a = alpha if alpha is not None else p.style.alpha
        with option_value("--color"):
            style = ov.Style(
                color=ov.parse_color(color) if isinstance(color, str) else color, alpha=a, width=w
            )
        label = labels[0] if len(labels) == 1 else (labels[i] if labels else p.label)
        styled.append(replace(p, style=style, label=label))
    if not colors and len(styled) > 1:
        # Prompts read from a file keep their colours (already chosen when they were saved).
        assigned = ov.assign_distinct_colors(styled)
        styled = styled[:from_file] + assigned[from_file:]
    return styled


def prompt_options(fn: click.decorators.FC) -> click.decorators.FC:
    """The prompt flags shared by `render` and `ask`."""
    options = [
        click.option(
            "--bbox",
            "bboxes",
            multiple=True,
            metavar="X1,Y1,X2,Y2",
            help="A region in absolute pixels (top-left, bottom-right); repeatable.",
        ),
        click.option(
            "--shape",
            type=click.Choice(SHAPES),
            default="rectangle",
            show_default=True,
            help="How each --bbox region is marked (sampled as in training, see --seed).",
        ),
        click.option(
            "--polygon",
            "polygons",
            multiple=True,
            metavar="X,Y,X,Y,...",
            help="A region outline; with --shape mask/contour it is drawn as such; repeatable.",
        ),
        click.option(
            "--arrow",
            "arrows",
            multiple=True,
            metavar="X1,Y1,X2,Y2",
            help="An arrow from tail (x1,y1) to tip (x2,y2); repeatable.",
        ),
        click.option(
            "--point", "points", multiple=True, metavar="X,Y", help="A dot at x,y; repeatable."
        ),
        click.option(
            "--color",
            "colors",
            multiple=True,
            metavar="NAME|R,G,B",
            help="Palette name (red, lime, blue, yellow, fuchsia, aqua, orange, purple, gold) "
            "or R,G,B. Once for all prompts or once per prompt. Default red; several regions "
            "get distinct colours.",
        ),
        click.option(
            "--alpha",
            type=click.IntRange(0, 255),
            default=None,
            help="Opacity 0..255. Default 128; prompts read with --prompts keep their own.",
        ),
        click.option(
            "--width",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Line width in model units (× max(W,H)/336 pixels). Default 3 (contour 1).",
        ),
        click.option(
            "--label",
            "labels",
            multiple=True,
            help="Class name of the region(s) for phrases, e.g. person.",
        ),
        click.option(
            "--prompts",
            "prompts_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="A JSON file of prompts (the format of `vipstudio render --save-prompts`).",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed for prompts sampled from a region.",
        ),
        click.option(
            "--max-pixels",
            type=click.IntRange(min=1),
            default=ov.MAX_PIXELS,
            show_default=True,
            help="Refuse images with more pixels than this.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@prompt_options
@click.option(
    "--model-view", is_flag=True, help="Write the model's padded 336×336 view instead of full size."
)
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Output image (PNG recommended; the format follows the extension).",
)
@click.option(
    "--save-prompts",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the prompts as JSON (reusable with --prompts).",
)
def render(
    image: Path,
    bboxes: tuple[str, ...],
    shape: str,
    polygons: tuple[str, ...],
    arrows: tuple[str, ...],
    points: tuple[str, ...],
    colors: tuple[str, ...],
    alpha: int | None,
    width: float | None,
    labels: tuple[str, ...],
    prompts_file: Path | None,
    seed: int,
    max_pixels: int,
    model_view: bool,
    out: Path,
    save_prompts: Path | None,
) -> None:
    """Draw visual prompts on IMAGE exactly as ViP-LLaVA sees them.

    \b
    With only --bbox it draws what the original `cli_vip --bbox` draws:
    a red rectangle, width 3, alpha 128.
      vipstudio render photo.jpg --bbox 180,20,420,230 -o marked.png
      vipstudio render photo.jpg --bbox 10,10,200,200 --shape arrow --color blue -o a.png
      vipstudio render photo.jpg --polygon 10,10,90,20,60,80 --shape contour --model-view -o m.png
    """
    with reported():
        img = ov.load_image(image, max_pixels=max_pixels)
        prompts = build_prompts(
            img.size,
            bboxes,
            shape,
            polygons,
            arrows,
            points,
            colors,
            alpha,
            width,
            seed,
            prompts_file,
            labels,
        )
        result = ov.render(img, prompts, inplace=True)
        if model_view:
            result = ov.model_view(result)
        inputs = [image] + ([prompts_file] if prompts_file is not None else [])
        try:
            for target in (out, save_prompts):  # both refused or neither written
                if target is not None:
                    check_output_file(target, inputs)
            _save_atomic(result, out, inputs)
            if save_prompts is not None:
                _write_atomic(save_prompts, ov.dumps(prompts, indent=2), inputs)
        except OutputRefused as exc:
            raise CliError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise CliError(f"{out}: cannot write ({_why(exc)})") from None
    for p in prompts:
        click.echo(ov.referring_phrase(p), err=True)
    click.echo(f"wrote {out} ({result.width}×{result.height}, {len(prompts)} prompt(s))", err=True)


def _save_atomic(image: Image.Image, path: Path, inputs: list[Path]) -> None:
    fmt = _format_of(path)  # before anything is written
    with atomic_write(path, "wb", suffix=path.suffix, protect=inputs) as fh:
        image.save(fh, format=fmt)


def _write_atomic(path: Path, text: str, inputs: list[Path]) -> None:
    with atomic_write(path, protect=inputs) as fh:
        fh.write(text)


def _why(exc: Exception) -> str:
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return "a part of the path is a file, not a folder"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _format_of(path: Path) -> str:
    ext = path.suffix.lower()
    Image.init()
    fmt = Image.EXTENSION.get(ext)
    if fmt is None:
        raise ValueError(f"unknown image extension {ext!r}: use .png, .jpg or .webp")
    return fmt


def register(main: click.Group) -> None:
    main.add_command(render)
