"""`vipstudio render` through the real console script, on real files in tmp_path.

Exit codes (app/cli.py): 0 success; 1 the data is bad (image file, prompts file, a region off
the image) with exactly one ``Error:`` line on stderr; 2 the command line is wrong (click's
usage errors: the ``Usage:``/``Try`` hint, then one ``Error:`` line). Never a traceback.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from PIL import Image

import overlays as ov

BIN = Path(sys.executable).parent
VIPSTUDIO = BIN / "vipstudio"
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "coffee.jpg"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VIPSTUDIO), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={"PATH": str(BIN), "QT_QPA_PLATFORM": "offscreen", "LC_ALL": "C.UTF-8"},
    )


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640×427 PNG of seeded noise: any stray or missing pixel shows."""
    path = tmp_path_factory.mktemp("images") / "noise.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (427, 640, 3), dtype=np.uint8)).save(path)
    return path


def test_the_console_script_is_installed() -> None:
    assert VIPSTUDIO.exists(), f"{VIPSTUDIO} missing: pip install -e . creates it"


# --------------------------------------------------------------------------- success


def test_only_bbox_draws_the_original_default_rectangle(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "marked.png"
    result = run("render", image_file, "--bbox", "180,20,420,230", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "the object within the red rectangle" in result.stderr
    assert "wrote" in result.stderr and "640×427" in result.stderr
    image = ov.load_image(image_file)
    default = ov.Rectangle((180, 20, 420, 230), style=ov.Style("red", 128, 3))
    assert np.array_equal(pixels(out), np.asarray(ov.render(image, [default])))
    # ...which is what the original code draws (full-frame RGBA layer + alpha_composite).
    assert np.array_equal(pixels(out), np.asarray(ov.render_reference(image, [default])))


def test_a_real_photo_and_float_coordinates(tmp_path: Path) -> None:
    out = tmp_path / "coffee.png"
    result = run("render", SAMPLE, "--bbox", "180.5, 20.25, 420, 230.75", "-o", out)
    assert result.returncode == 0, result.stderr
    expected = ov.render(ov.load_image(SAMPLE), [ov.Rectangle((180.5, 20.25, 420, 230.75))])
    assert np.array_equal(pixels(out), np.asarray(expected))


def test_model_view_is_336_square(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "view.png"
    result = run("render", image_file, "--bbox", "0,0,100,100", "--model-view", "-o", out)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as im:
        assert im.size == (336, 336)
    expected = ov.model_view(ov.render(ov.load_image(image_file), [ov.Rectangle((0, 0, 100, 100))]))
    assert np.array_equal(pixels(out), np.asarray(expected))
    assert tuple(pixels(out)[2, 168]) == ov.PAD_COLOR  # 640×427 is padded top and bottom


@pytest.mark.parametrize(
    "shape", ["rectangle", "ellipse", "point", "triangle", "arrow", "scribble", "mask", "contour"]
)
def test_every_shape_renders_what_its_saved_prompt_describes(
    image_file: Path, tmp_path: Path, shape: str
) -> None:
    out, saved = tmp_path / f"{shape}.png", tmp_path / f"{shape}.json"
    result = run(
        "render",
        image_file,
        "--bbox",
        "200,100,400,300",
        "--shape",
        shape,
        "--seed",
        "3",
        "-o",
        out,
        "--save-prompts",
        saved,
    )
    assert result.returncode == 0, result.stderr
    prompts = ov.loads(saved.read_text(encoding="utf-8"))
    assert [p.kind for p in prompts] == [shape]
    assert prompts[0].region is not None and prompts[0].region.box == (200, 100, 400, 300)
    assert prompts[0].style.alpha == 128 and prompts[0].style.color == "red"
    assert ov.referring_phrase(prompts[0]) in result.stderr
    rendered = pixels(out)
    original = np.asarray(ov.load_image(image_file))
    assert np.array_equal(rendered, np.asarray(ov.render(ov.load_image(image_file), prompts)))
    changed = np.any(rendered != original, axis=2)
    assert changed.any()
    ys, xs = np.nonzero(changed)
    # Marks stay near the region. The farthest reach is an arrow's tail: the tip is within
    # 0.25·side of the centre (±50) and the length at most max(0.8·200, 50·s) = 160, so the
    # tail is at most 110 px outside the region (plus half a line width).
    margin = 110 + 3
    assert xs.min() >= 200 - margin and xs.max() <= 400 + margin
    assert ys.min() >= 100 - margin and ys.max() <= 300 + margin


def test_the_seed_makes_sampled_shapes_reproducible(image_file: Path, tmp_path: Path) -> None:
    args: list[str | Path] = [
        "render",
        image_file,
        "--bbox",
        "200,100,400,300",
        "--shape",
        "scribble",
    ]
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert run(*args, "--seed", "11", "-o", a).returncode == 0
    assert run(*args, "--seed", "11", "-o", b).returncode == 0
    assert run(*args, "--seed", "12", "-o", c).returncode == 0
    assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(c))


def test_style_options_reach_the_pixels(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "styled.png"
    result = run(
        "render",
        image_file,
        "--bbox",
        "50,60,250,200",
        "--color",
        "10,200,30",
        "--alpha",
        "200",
        "--width",
        "5",
        "--label",
        "cup",
        "-o",
        out,
    )
    assert result.returncode == 0, result.stderr
    style = ov.Style((10, 200, 30), 200, 5.0)
    expected = ov.render(ov.load_image(image_file), [ov.Rectangle((50, 60, 250, 200), style=style)])
    assert np.array_equal(pixels(out), np.asarray(expected))
    assert "the cup within the rectangle" in result.stderr  # an unnamed colour is not named


def test_polygon_arrow_and_point_options(image_file: Path, tmp_path: Path) -> None:
    out, saved = tmp_path / "many.png", tmp_path / "many.json"
    result = run(
        "render",
        image_file,
        "--polygon",
        "300,50,420,80,380,200,310,150",
        "--shape",
        "contour",
        "--arrow",
        "600,400,450,250",
        "--point",
        "100,300",
        "-o",
        out,
        "--save-prompts",
        saved,
    )
    assert result.returncode == 0, result.stderr
    prompts = ov.loads(saved.read_text(encoding="utf-8"))
    assert [p.kind for p in prompts] == ["contour", "arrow", "point"]
    contour, arrow, point = prompts
    assert isinstance(contour, ov.Contour) and contour.polygons == (
        ((300.0, 50.0), (420.0, 80.0), (380.0, 200.0), (310.0, 150.0)),
    )
    assert isinstance(arrow, ov.Arrow) and (arrow.tail, arrow.tip) == ((600, 400), (450, 250))
    assert isinstance(point, ov.Point) and point.center == (100, 300)
    # Several regions without --color get distinct palette colours.
    assert [p.style.color for p in prompts] == ["red", "lime", "blue"]
    assert "the object pointed to by the lime arrow" in result.stderr
    assert np.array_equal(pixels(out), np.asarray(ov.render(ov.load_image(image_file), prompts)))


def test_one_colour_per_prompt(image_file: Path, tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    result = run(
        "render",
        image_file,
        "--bbox",
        "10,10,100,100",
        "--bbox",
        "200,200,300,300",
        "--color",
        "gold",
        "--color",
        "0,0,255",
        "-o",
        tmp_path / "o.png",
        "--save-prompts",
        saved,
    )
    assert result.returncode == 0, result.stderr
    assert [p.style.color for p in ov.loads(saved.read_text(encoding="utf-8"))] == ["gold", "blue"]


@pytest.mark.parametrize(
    "options",
    [
        # One prompt, non-default alpha and width.
        [
            "--bbox",
            "100,80,300,240",
            "--shape",
            "arrow",
            "--seed",
            "5",
            "--alpha",
            "200",
            "--width",
            "4",
        ],
        # Two prompts sharing one unnamed colour.
        [
            "--bbox",
            "100,80,300,240",
            "--bbox",
            "320,200,600,400",
            "--shape",
            "triangle",
            "--color",
            "10,20,30",
            "--alpha",
            "90",
        ],
        # Two prompts with the default colours.
        ["--bbox", "100,80,300,240", "--point", "500,100", "--shape", "ellipse"],
    ],
    ids=["alpha-width", "shared-rgb", "defaults"],
)
def test_save_prompts_then_prompts_round_trips(
    image_file: Path, tmp_path: Path, options: list[str]
) -> None:
    first, second, saved = tmp_path / "first.png", tmp_path / "second.png", tmp_path / "p.json"
    result = run("render", image_file, *options, "-o", first, "--save-prompts", saved)
    assert result.returncode == 0, result.stderr
    doc = json.loads(saved.read_text(encoding="utf-8"))
    assert doc["schema"] == ov.SCHEMA
    result = run("render", image_file, "--prompts", saved, "-o", second)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(pixels(first), pixels(second))
    # Reading the prompts back changed nothing about them.
    resaved = tmp_path / "again.json"
    run("render", image_file, "--prompts", saved, "-o", second, "--save-prompts", resaved)
    assert ov.loads(resaved.read_text(encoding="utf-8")) == ov.loads(saved.read_text("utf-8"))


def test_output_format_follows_the_extension(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "dir" / "marked.jpg"
    result = run("render", image_file, "--bbox", "10,10,50,50", "-o", out)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (640, 427)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temp file left"


# --------------------------------------------------------------------------- bad input


def _truncated_jpeg(path: Path) -> Path:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


USAGE, DATA = 2, 1


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--bbox", "1,2,x,4"], USAGE, ["--bbox", "not a list of numbers"]),
        (["--bbox", "1;2;3;4"], USAGE, ["--bbox", "not a list of numbers"]),
        (["--bbox", "nan,2,30,40"], USAGE, ["--bbox"]),
        (["--bbox", "50,10,20,40"], USAGE, ["--bbox", "x1 < x2"]),
        (["--bbox", "10,40,50,40"], USAGE, ["--bbox", "y1 < y2"]),
        (["--bbox", "1,2,3"], USAGE, ["--bbox", "3 numbers, expected 4"]),
        (["--bbox", "1,2,3,4,5"], USAGE, ["--bbox", "expected 4"]),
        (["--arrow", "1,2,3"], USAGE, ["--arrow", "expected 4"]),
        (["--arrow", "5,5,5,5"], USAGE, ["--arrow", "zero length"]),
        (["--point", "1"], USAGE, ["--point", "expected 2"]),
        (["--polygon", "1,2,3,4,5"], USAGE, ["--polygon", "even number"]),
        (["--polygon", "1,2,30,40"], USAGE, ["--polygon", "at least 3"]),
        (["--polygon", "0,0,10,10,10,0,0,10"], USAGE, ["--polygon", "crossing"]),
        (["--bbox", "10,10,50,50", "--color", "pink"], USAGE, ["--color", "unknown colour 'pink'"]),
        (["--bbox", "10,10,50,50", "--color", "1,2,300"], USAGE, ["--color", "0..255"]),
        (["--bbox", "10,10,50,50", "--color", "red", "--color", "blue"], USAGE, ["--color"]),
        (["--bbox", "10,10,50,50", "--alpha", "300"], USAGE, ["--alpha"]),
        (["--bbox", "10,10,50,50", "--width", "0"], USAGE, ["--width"]),
        (["--bbox", "10,10,50,50", "--shape", "hexagon"], USAGE, ["--shape"]),
        ([], USAGE, ["nothing to draw"]),
        (["--bbox", "700,10,900,50"], DATA, ["outside", "640×427"]),
        (["--bbox", "-90,-50,-10,-1"], DATA, ["outside"]),
        (["--point", "1000,1000"], DATA, ["outside"]),
        (["--bbox", "10,10,50,50", "--max-pixels", "1000"], DATA, ["273,280", "--max-pixels"]),
    ],
)
def test_bad_input_gives_one_clear_line_and_the_right_exit_code(
    image_file: Path, tmp_path: Path, args: list[str], code: int, words: list[str]
) -> None:
    out = tmp_path / "out.png"
    result = run("render", image_file, *args, "-o", out)
    _assert_clean_failure(result, code, words)
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (lambda d: d / "missing.jpg", DATA, ["missing.jpg", "no such file"]),
        (lambda d: d, DATA, ["folder"]),
        (lambda d: _write(d / "notes.jpg", b"just some text\n"), DATA, ["not an image"]),
        (lambda d: _truncated_jpeg(d / "cut.jpg"), DATA, ["damaged"]),
    ],
    ids=["missing", "directory", "text-as-jpg", "truncated-jpeg"],
)
def test_unreadable_images(tmp_path: Path, make, code: int, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.png"
    result = run("render", make(tmp_path), "--bbox", "1,1,20,20", "-o", out)
    _assert_clean_failure(result, code, words)
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["cannot read prompts"]),
        ("{not json", ["not valid JSON"]),
        (json.dumps({"schema": "vipstudio.prompts/9", "prompts": []}), ["schema", "not supported"]),
        (json.dumps([{"kind": "hexagon"}]), ["prompt 0", "unknown prompt kind"]),
        (
            json.dumps([{"kind": "rectangle", "box": [0, 0, 1, 1], "style": {"width": None}}]),
            ["width"],
        ),
        (json.dumps([{"kind": "rectangle", "box": [900, 900, 990, 990]}]), ["outside"]),
    ],
    ids=["missing", "not-json", "schema", "kind", "width-null", "outside"],
)
def test_bad_prompt_files(
    image_file: Path, tmp_path: Path, content: str | None, words: list[str]
) -> None:
    path = tmp_path / "prompts.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run("render", image_file, "--prompts", path, "-o", tmp_path / "out.png")
    _assert_clean_failure(result, DATA, words)


def test_unwritable_output(image_file: Path, tmp_path: Path) -> None:
    result = run("render", image_file, "--bbox", "1,1,20,20", "-o", tmp_path / "out.xyz")
    _assert_clean_failure(result, DATA, ["unknown image extension", ".xyz"])
    result = run("render", image_file, "--bbox", "1,1,20,20")
    _assert_clean_failure(result, USAGE, ["-o"])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _assert_clean_failure(
    result: subprocess.CompletedProcess[str], code: int, words: list[str]
) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    if code == DATA:
        assert lines == errors, f"a data error is one line, got {result.stderr!r}"
    else:
        assert lines[0].startswith("Usage:"), result.stderr
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"


# --------------------------------------------------------------------------- help


def _walk(
    command: click.Command, parent: click.Context | None = None, path: str = "vipstudio"
) -> list[tuple[str, click.Command]]:
    """Every command and subcommand, through click's API (groups may load commands lazily)."""
    ctx = click.Context(command, info_name=path.split()[-1], parent=parent)
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} lists {name!r} but cannot load it"
            found.extend(_walk(sub, ctx, f"{path} {name}"))
    return found


def test_every_command_and_subcommand_has_help_text() -> None:
    from app.cli import main

    commands = _walk(main)
    assert "vipstudio render" in {name for name, _ in commands}
    missing = [name for name, cmd in commands if not (cmd.help or "").strip()]
    assert not missing, f"commands without help text: {missing}"


def test_every_option_of_every_command_has_help_text() -> None:
    from app.cli import main

    missing = [
        f"{name} --{p.name}"
        for name, command in _walk(main)
        for p in command.params
        if isinstance(p, click.Option) and not (p.help or "").strip()
    ]
    assert not missing, f"options without help: {missing}"


def test_help_and_version_through_the_console_script() -> None:
    top = run("--help")
    assert top.returncode == 0 and "render" in top.stdout
    sub = run("render", "--help")
    assert sub.returncode == 0
    for option in (
        "--bbox",
        "--shape",
        "--polygon",
        "--arrow",
        "--point",
        "--color",
        "--alpha",
        "--width",
        "--model-view",
        "--save-prompts",
        "--prompts",
        "--max-pixels",
    ):
        assert option in sub.stdout, option
    assert "red rectangle, width 3, alpha 128" in sub.stdout
    version = run("--version")
    assert version.returncode == 0 and "0." in version.stdout


def test_python_dash_m_entry_point(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "render",
            str(image_file),
            "--bbox",
            "5,5,60,60",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    expected = ov.render(ov.load_image(image_file), [ov.Rectangle((5, 5, 60, 60))])
    assert np.array_equal(pixels(out), np.asarray(expected))
