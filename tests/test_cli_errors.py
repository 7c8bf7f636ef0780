"""Every command, fed bad arguments: exit 1 (bad data) or 2 (bad command line), one `Error:` line,
never a traceback, and nothing the user had is changed (issue 9 §1 and §7).

The table runs in-process (click's runner, real files); the safety net and a full disk are
checked through the real `vipstudio` executable.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import overlays as ov
from app import cli
from data_gen.qalog.log import NewTurn, QALog

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
VIPSTUDIO = Path(sys.executable).parent / "vipstudio"
#: An import whose every entry is invalid prints its report (what was skipped and why) first.
REPORT = {"report": True}
INVALID = ["every entry is invalid"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny clip (5 frames, 0.5 s), a damaged one and an audio-only file, made once."""
    import av
    import numpy as np

    from overlays.video_io import write_video

    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "clip.mp4", [np.full((24, 32, 3), 9 * i, np.uint8) for i in range(5)], 10)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    with av.open(str(folder / "voice.mp4"), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for k in range(4):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, k * 1024
            container.mux(stream.encode(frame))  # type: ignore[attr-defined]
        container.mux(stream.encode(None))  # type: ignore[attr-defined]
    return folder


@pytest.fixture
def place(tmp_path: Path, videos: Path) -> dict[str, Path]:
    """Real files for each row (a row that went wrong cannot spoil the next): a log beside its
    photo, a fake home, odd inputs."""
    root = tmp_path
    work = root / "work"  # the folder holding the log and the photo
    work.mkdir()
    photo = Path(shutil.copy(SAMPLES / "coffee.jpg", work / "coffee.jpg"))
    with QALog.open(work / "log.sqlite") as log:
        image = log.add_image(photo)
        session = log.start_session(image.id)
        prompts = [ov.Rectangle((180, 20, 420, 230))]
        text, refs = ov.compose_question("What is <region>?", prompts)
        log.add_turn(NewTurn(session, prompts, text, "A cup.", "m", "llava_v1", question_refs=refs))
    home = root / "home"
    home.mkdir()
    (home / "notes.txt").write_text("precious")
    other = root / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("mine")
    (root / "afile").write_text("a file, not a folder")
    (root / "binary.json").write_bytes(bytes(range(256)) * 20)
    (root / "damaged.sqlite").write_bytes(b"this is not sqlite" * 300)
    os.mkfifo(root / "fifo.png")
    import sqlite3

    foreign = sqlite3.connect(root / "foreign.db")
    foreign.execute("CREATE TABLE customers (id INTEGER)")
    foreign.execute("PRAGMA user_version = 1")
    foreign.commit()
    foreign.close()
    coco_image = {"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}
    coco_ann = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50]}
    _json(work / "coco-list-id.json", {"images": [{**coco_image, "id": [1]}], "annotations": []})
    _json(
        work / "coco-int-seg.json",
        {"images": [coco_image], "annotations": [{**coco_ann, "segmentation": 5}]},
    )
    conversation = [
        {"from": "human", "value": "<image>\nWhat is <bbox0>?"},
        {"from": "gpt", "value": "A cup."},
    ]
    vip = {
        "id": "v1",
        "image": "coffee.jpg",
        "bboxes": [[1, 1, 50, 50]],
        "conversations": conversation,
    }
    _json(work / "vip.json", [vip])
    # two polygons sharing a list group_id (a hashable id is what groups shapes)
    points = [[10, 10], [60, 60], [10, 60]]
    shape = {"label": "cup", "points": points, "shape_type": "polygon", "group_id": [1]}
    labelme = {"imagePath": "coffee.jpg", "imageWidth": 600, "imageHeight": 400}
    _json(work / "labelme.json", {**labelme, "shapes": [shape, shape]})
    for name in ("clip", "corrupt", "voice"):
        shutil.copy(videos / f"{name}.mp4", work / f"{name}.mp4")
    return {
        "clip": work / "clip.mp4",
        "corrupt": work / "corrupt.mp4",
        "voice": work / "voice.mp4",
        "root": root,
        "work": work,
        "log": work / "log.sqlite",
        "img": photo,
        "home": home,
        "other": other,
        "afile": root / "afile",
        "binary": root / "binary.json",
        "damaged": root / "damaged.sqlite",
        "fifo": root / "fifo.png",
        "foreign": root / "foreign.db",
        "out": root / "out.png",
    }


def _json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data))


USAGE, DATA = 2, 1
NO_DISPLAY = {"DISPLAY": None, "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": None}

# (command line with {placeholders}, expected exit code, words in the error line, environment)
CASES: list[Any] = [
    # render: coordinates are strict numbers, outputs never replace what they must not
    ("render {img} --bbox 10,,10,100,100 -o {out}", USAGE, ["--bbox", "empty value"], {}),
    ("render {img} --bbox 1_0,10,100,100 -o {out}", USAGE, ["--bbox", "'1_0'"], {}),
    ("render {img} --bbox 0x10,10,100,100 -o {out}", USAGE, ["--bbox", "'0x10'"], {}),
    ("render {img} --arrow 10,10,1e308,1e308 -o {out}", USAGE, ["--arrow", "within"], {}),
    ("render {img} --point inf,3 -o {out}", USAGE, ["--point"], {}),
    ("render {img} --polygon 1,2,30,4,5,nan -o {out}", USAGE, ["--polygon"], {}),
    ("render {img} --bbox 1,1,50,50 --color 1_0,2,3 -o {out}", USAGE, ["--color"], {}),
    ("render {img} --bbox 1,1,50,50 --color #+f0000 -o {out}", USAGE, ["--color"], {}),
    ("render {img} --bbox 1,1,50,50 -o {afile}/x.png", DATA, ["cannot write"], {}),
    ("render {img} --prompts {binary} -o {out}", DATA, ["not a text file"], {}),
    ("render {img} --bbox 1,1,50,50 -o {fifo}", DATA, ["not a regular file"], {}),
    ("render {img} --bbox 1,1,50,50 -o {img}", DATA, ["is an input"], {}),
    ("render {img} --bbox 1,1,50,50 -o {log}", DATA, ["SQLite"], {}),
    ("render {img} --bbox 1,1,50,50 -o {root}/x.xyz", DATA, ["unknown image extension"], {}),
    ("render {img} --bbox 1,1,50,50 -o {out} --save-prompts {log}", DATA, ["SQLite"], {}),
    ("render {root}/missing.jpg --bbox 1,1,50,50 -o {out}", DATA, ["missing.jpg"], {}),
    # ask: the same prompt flags, refused before any model loads
    ("ask {img} what? --bbox 10,,10,100,100", USAGE, ["--bbox"], {}),
    ("ask {img} what? --arrow 10,10,1e308,1e308", USAGE, ["--arrow"], {}),
    ("ask --batch {binary}", USAGE, ["--out"], {}),
    ("ask", USAGE, ["IMAGE"], {}),
    # ask about a video: the moment must be in the clip, the file a readable video
    ("ask {clip} what? --bbox 1,1,9,9 --at 99", DATA, ["outside the video", "0.500"], {}),
    ("ask {clip} what? --bbox 1,1,9,9 --frame 5", DATA, ["frame 5 is outside", "0–4"], {}),
    ("ask {corrupt} what? --bbox 1,1,9,9 --at 0", DATA, ["damaged or truncated"], {}),
    ("ask {voice} what? --bbox 1,1,9,9 --at 0", DATA, ["no video stream", "audio only"], {}),
    ("ask {root}/none.mp4 what? --at 0", DATA, ["no such file"], {}),
    ("ask {clip} what? --bbox 1,1,9,9", USAGE, ["--at SECONDS or --frame N"], {}),
    ("ask {img} what? --bbox 1,1,9,9 --at 1", USAGE, ["--at", "for videos"], {}),
    ("ask {clip} what? --bbox 1,1,9,9 --at 0 --track", USAGE, ["--track needs --every"], {}),
    ("ask {clip} what? --at 0 --track --every 0.1", USAGE, ["region to follow"], {}),
    ("ask {clip} --bbox 1,1,9,9 --at 0 --every 0.1", USAGE, ["needs a QUESTION"], {}),
    ("ask --batch {binary} --out {root}/a.jsonl --at 3", USAGE, ["--at", '"t"'], {}),
    # export: only an earlier export is ever replaced
    ("export --db {log} --format vip-llava --out {work} --overwrite", DATA, ["log.sqlite"], {}),
    ("export --db {log} --format vip-llava --out {home} --overwrite", DATA, ["home"], "HOME"),
    ("export --db {log} --format vip-llava --out {other} --overwrite", DATA, ["not a folder"], {}),
    ("export --db {log} --format vip-llava --out /", DATA, ["already exists"], {}),
    ("export --db {log} --format vip-llava --out {afile}", USAGE, ["--out"], {}),
    ("export --db {foreign} --format vip-llava --out {root}/ds", DATA, ["not a ViP"], {}),
    ("export --db {damaged} --format hf --out {root}/ds", DATA, ["damaged"], {}),
    ("export --db {root}/none.sqlite --format hf --out {root}/ds", DATA, ["no such log"], {}),
    ("export --db {log} --format csv --out {root}/ds", USAGE, ["--format"], {}),
    ("export --db {log} --format hf --out {root}/ds --since someday", DATA, ["someday"], {}),
    # import
    ("import --db {log} --format coco {binary}", DATA, ["binary.json"], {}),
    ("import --db {log} --format coco {root}/missing.json", USAGE, ["missing.json"], {}),
    ("import --db {log} --format vip-llava {work}/vip.json --queries {log}", DATA, ["input"], {}),
    ("import --db {log} --format coco {work}/coco-list-id.json", DATA, INVALID, REPORT),
    ("import --db {log} --format coco {work}/coco-int-seg.json", DATA, INVALID, REPORT),
    ("import --db {log} --format labelme {work}/labelme.json", DATA, INVALID, REPORT),
    # log
    ("log show 99999999999999999999999 --db {log}", USAGE, ["TURN_ID"], {}),
    ("log show 0 --db {log}", USAGE, ["TURN_ID"], {}),
    ("log show 5 --db {log}", DATA, ["turn 5 does not exist"], {}),
    ("log review 1 bogus --db {log}", USAGE, ["bogus"], {}),
    ("log review 1 edited --db {log}", DATA, ["corrected answer"], {}),
    ("log tag 999 x --db {log}", DATA, ["turn 999"], {}),
    ("log stats --db {foreign}", DATA, ["not a ViP Studio log"], {}),
    ("log list --db {damaged}", DATA, ["damaged"], {}),
    ("log list --db {root}", USAGE, ["--db"], {}),
    ("log stats --db {log} --plot {afile}/x.png", DATA, ["x.png"], {}),
    ("log stats --db {log} --plot {log}", DATA, ["SQLite"], {}),
    ("report --db {log} --plot {log}", DATA, ["SQLite"], {}),
    ("report --db {log} --plot {img}", DATA, ["source image"], {}),
    ("log stats --db {log} --plot {img}", DATA, ["source image"], {}),
    ("report --db {foreign}", DATA, ["not a ViP Studio log"], {}),
    # serve, doctor, make-tiny-model, gui: argument errors before anything loads
    ("serve --port abc", USAGE, ["--port"], {}),
    ("serve --max-batch-size 0", USAGE, ["--max-batch-size"], {}),
    ("serve --device tpu", USAGE, ["--device"], {}),
    ("serve --host 0.0.0.0", DATA, ["token"], {"VIPSTUDIO_TOKEN": None}),
    ("doctor --cache-dir {afile}", USAGE, ["--cache-dir"], {}),
    ("doctor --bogus", USAGE, ["--bogus"], {}),
    ("make-tiny-model {afile}", USAGE, ["DIRECTORY"], {}),
    ("make-tiny-model {other} --overwrite", DATA, ["make-tiny-model"], {}),
    ("make-tiny-model {root}/m --scale huge", USAGE, ["--scale"], {}),
    ("gui {work}", DATA, ["no display"], NO_DISPLAY),
    ("gui {root}/missing", USAGE, ["missing"], NO_DISPLAY),
    ("gui --server ftp://x", USAGE, ["--server"], NO_DISPLAY),
]


def _ids() -> list[str]:
    out = []
    for case in CASES:
        line = case.values[0] if hasattr(case, "values") else case[0]
        out.append(line.replace("{", "").replace("}", ""))
    return out


def _snapshot(place: dict[str, Path]) -> dict[str, bytes]:
    """Every file the table must leave alone, with its bytes."""
    return {
        str(p): p.read_bytes()
        for p in sorted(place["root"].rglob("*"))
        if p.is_file() and not p.name.startswith("log.sqlite")
    }


@pytest.mark.parametrize(("line", "code", "words", "env"), CASES, ids=_ids())
def test_bad_arguments_give_one_line_and_change_nothing(
    place: dict[str, Path], line: str, code: int, words: list[str], env: Any
) -> None:
    report = env == REPORT
    if env == "HOME":
        env = {"HOME": str(place["home"])}
    elif report:
        env = {}
    args = [a.format(**{k: str(v) for k, v in place.items()}) for a in line.split()]
    before = _snapshot(place)
    turns_before = _turns(place["log"])
    result = CliRunner().invoke(cli.main, args, env=env)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert "a bug in ViP Studio" not in result.stderr  # the safety net is a last resort
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    if code == DATA and report:
        assert lines[-1] == errors[0] and "invalid entries skipped" in result.stderr
    elif code == DATA:
        assert lines == errors, f"a data error is one line, got {result.stderr!r}"
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    assert _snapshot(place) == before, "a refused command changed a file"
    assert _turns(place["log"]) == turns_before
    assert not (place["root"] / "ds").exists() and not (place["root"] / "m").exists()


def _turns(path: Path) -> int:
    with QALog.open(path, mode="ro") as log:
        return log.count()


def test_safety_net_turns_an_unexpected_error_into_one_line() -> None:
    """A bug still ends as one line (exit 1); --debug shows the traceback."""
    import click

    @click.command("boom-for-test")
    def boom() -> None:
        raise ZeroDivisionError("division by zero\nsecond line")

    group = cli.main
    assert isinstance(group, click.Group)
    cli.all_commands()
    group.add_command(boom)
    try:
        result = CliRunner().invoke(group, ["boom-for-test"], env={"VIPSTUDIO_DEBUG": None})
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            "Error: unexpected ZeroDivisionError: division by zero second line (a bug in ViP "
            "Studio: please report it; run with --debug or VIPSTUDIO_DEBUG=1 for the traceback)"
        ]
        debug = CliRunner().invoke(group, ["--debug", "boom-for-test"])
        assert isinstance(debug.exception, ZeroDivisionError)
    finally:
        group.commands.pop("boom-for-test")


# --------------------------------------------------------------------------- a full disk


def _on_full_disk(folder: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run vipstudio with ``folder`` on a 16 KiB filesystem: a tmpfs in a private mount
    namespace (unprivileged, via unshare), else a 16 KiB file-size limit (EFBIG, as honest an
    OSError for the writer)."""
    folder.mkdir()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    if shutil.which("unshare") and probe.returncode == 0:
        script = f'mount -t tmpfs -o size=16k tmpfs "{folder}" && exec "$@"'
        command = ["unshare", "-rm", "sh", "-c", script, "sh", *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    return subprocess.run(argv, capture_output=True, text=True, timeout=120, preexec_fn=limit)


@pytest.mark.parametrize("what", ["export", "render"])
def test_a_full_disk_is_one_line_and_leaves_nothing(place: dict[str, Path], what: str) -> None:
    full = place["root"] / "full"
    if what == "export":
        argv = [str(VIPSTUDIO), "export", "--db", str(place["log"]), "--format", "vip-llava"]
        argv += ["--out", str(full / "ds")]
    else:
        argv = [str(VIPSTUDIO), "render", str(place["img"]), "--bbox", "1,1,500,300"]
        argv += ["--shape", "mask", "--alpha", "255", "-o", str(full / "big.png")]
    result = _on_full_disk(full, argv)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    assert any(w in lines[0] for w in ("No space left", "File too large")), lines[0]
    assert list(full.iterdir()) == []  # nothing half-written (outside the namespace: empty)
