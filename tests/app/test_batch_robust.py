"""`ask --batch` finishes whatever a line holds: every line ends as an answer or an error record.

Each bad line runs beside a good one through the real batch runner and the tiny model; the whole
table runs once more through the console script. Nothing here may hang: a run that does not end
within its timeout fails the test.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.batch import BatchRunner, Summary
from vip_model.engine import GenerationSettings
from vip_model.hf import HFEngine

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"
VIPSTUDIO = str(Path(sys.executable).parent / "vipstudio")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
GOOD = {
    "id": "good",
    "image": str(SAMPLES / "coffee.jpg"),
    "question": "What is <region0>?",
    "bboxes": [[10, 10, 200, 150]],
}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def bad(**changes: Any) -> str:
    return json.dumps({**GOOD, "id": "bad", **changes})


#: name → (the bad line, or a function of the test's folder making it; its id; words of the error)
CASES: dict[str, tuple[Any, str, str]] = {
    "seed is text": (bad(seed="abc"), "bad", "seed must be an integer"),
    "seed is negative": (bad(seed=-1), "bad", "seed must be an integer"),
    "labels is a number": (bad(labels=5), "bad", "labels must be a list of strings"),
    "labels hold a list": (bad(labels=[["x"]]), "bad", "labels must be a list of strings"),
    "bbox holds text": (bad(bboxes=[[1, 2, "3", 4]]), "bad", "bboxes must be a list"),
    "settings is a list": (bad(settings=[1]), "bad", "settings must be a JSON object"),
    "shape is a list": (bad(shape=["x"]), "bad", "unknown shape"),
    "id is a list": (bad(id=[1]), "line-2", "id must be"),
    "surrogate in the question": (bad(question="q\ud800?"), "bad", "'question' is not valid"),
    "surrogate in the image path": (bad(image="/tmp/\ud800.jpg"), "bad", "'image' is not valid"),
    "surrogate in a label": (bad(labels=["\udfff"]), "bad", "'labels' is not valid"),
    "surrogate in the id": (bad(id="\ud800"), "line-2", "'id' is not valid"),
    "NUL in the image path": (bad(image="/tmp/a\u0000.jpg"), "bad", "NUL"),
    "100000 nested lists": ("[" * 100_000 + "]" * 100_000, "line-2", "nested too deeply"),
    "nested deep inside a query": (
        bad(prompts=json.loads("[" * 500 + "]" * 500)),
        "bad",
        "nested too deeply",
    ),
    "an integer of 5000 digits": (
        bad(seed=0).replace('"seed": 0', '"seed": ' + "7" * 5000),
        "line-2",
        "not valid JSON",
    ),
    "NaN": (bad(bboxes=[[1, 2, 3, 4]]).replace("4]]", "NaN]]"), "line-2", "not valid JSON"),
    "a JSON list": ("[1, 2]", "line-2", "must be a JSON object"),
    "a FIFO named .jpg": (lambda d: bad(image=_fifo(d)), "bad", "not a regular file"),
    "a device named as the image": (bad(image=os.devnull), "bad", "not a regular file"),
}


def _fifo(folder: Path) -> str:
    path = folder / "fifo.jpg"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def _locked(folder: Path) -> str:
    """An image in a folder nobody may search (mode 000)."""
    locked = folder / "locked"
    locked.mkdir(exist_ok=True)
    (locked / "x.jpg").write_bytes((SAMPLES / "coffee.jpg").read_bytes())
    locked.chmod(0)
    return str(locked / "x.jpg")


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Iterator[HFEngine]:
    with HFEngine(str(tiny_model_dir)) as e:
        yield e


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Release anything a run left blocked on the FIFO (only the code before the fix did), and
    # let pytest remove the locked folder.
    if (tmp_path / "fifo.jpg").exists():
        with contextlib.suppress(OSError):  # no reader waiting: nothing to release
            os.close(os.open(tmp_path / "fifo.jpg", os.O_WRONLY | os.O_NONBLOCK))
    if (tmp_path / "locked").exists():
        (tmp_path / "locked").chmod(0o700)


def run_batch(engine: HFEngine, queries: Path, out: Path, **kw: Any) -> Summary:
    """The runner on its own thread, so that a hang fails the test instead of stopping it."""
    result: list[Summary | BaseException] = []

    def work() -> None:
        try:
            runner = BatchRunner(
                engine,
                "tiny",
                log=None,
                batch_size=2,
                settings=GenerationSettings(max_new_tokens=2),
                **kw,
            )
            result.append(runner.run(queries, out))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(60)
    assert result, "the batch hangs"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def records(path: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_line_becomes_an_error_record_and_again_on_rerun(
    case: str, engine: HFEngine, folder: Path
) -> None:
    line, ident, words = CASES[case]
    line = line(folder) if callable(line) else line
    queries, out = folder / "q.jsonl", folder / "a.jsonl"
    queries.write_text(json.dumps(GOOD) + "\n" + line + "\n", encoding="utf-8")
    first = run_batch(engine, queries, out)
    assert (first.answered, first.errors) == (1, 1)
    got = records(out)
    assert set(got) == {"good", ident} and "answer" in got["good"]
    assert words in got[ident]["error"], got[ident]
    second = run_batch(engine, queries, out)  # the error line is retried, and fails the same way
    assert (second.answered, second.skipped, second.errors) == (0, 1, 1)
    assert records(out)[ident]["error"] == got[ident]["error"]


@pytest.mark.skipif(IS_ROOT, reason="root reads any folder: the console-script test covers it")
def test_an_image_in_an_unreadable_folder_is_an_error_record(
    engine: HFEngine, folder: Path
) -> None:
    queries, out = folder / "q.jsonl", folder / "a.jsonl"
    queries.write_text(json.dumps(GOOD) + "\n" + bad(image=_locked(folder)) + "\n")
    summary = run_batch(engine, queries, out)
    assert (summary.answered, summary.errors) == (1, 1)
    assert "Permission denied" in records(out)["bad"]["error"]


def test_reading_an_image_has_a_timeout(engine: HFEngine, folder: Path) -> None:
    # A read that outlasts its timeout (a network drive that stopped answering) ends its line.
    # Here a real 24-megapixel decode (a tenth of a second or more) outlasts 10 ms.
    from PIL import Image

    from app.batch import ImageTimeout, read_image

    big = folder / "big.jpg"
    Image.linear_gradient("L").resize((6000, 4000)).convert("RGB").save(big, quality=80)
    with pytest.raises(ImageTimeout, match="took over"):
        read_image(big, max_pixels=10**8, timeout_s=0.01)
    queries, out = folder / "q.jsonl", folder / "a.jsonl"
    queries.write_text(json.dumps({**GOOD, "image": str(big)}) + "\n")
    summary = run_batch(engine, queries, out, read_timeout_s=0.01)
    assert summary.errors == 1 and records(out)["good"]["error_type"] == "ImageTimeout"


@pytest.mark.parametrize("what", ["a photo of the batch", "notes", "the queries", "a query line"])
def test_an_out_file_that_is_not_an_answers_file_is_left_alone(
    what: str, engine: HFEngine, folder: Path
) -> None:
    from app.batch import BatchFileError

    photo = folder / "photo.jpg"
    photo.write_bytes((SAMPLES / "coffee.jpg").read_bytes())
    queries = folder / "q.jsonl"
    queries.write_text(json.dumps({**GOOD, "image": str(photo)}) + "\n{not json\n")
    notes = folder / "notes.txt"
    notes.write_text("my notes\n\nmore notes\n")
    line = folder / "line.txt"
    line.write_text(json.dumps(GOOD))  # a query without its newline
    out = {
        "a photo of the batch": photo,
        "notes": notes,
        "the queries": queries,
        "a query line": line,
    }
    before = out[what].read_bytes()
    with pytest.raises(BatchFileError, match="not an answers file"):
        run_batch(engine, queries, out[what])
    assert out[what].read_bytes() == before


def test_lines_that_are_not_utf8_or_too_long(
    engine: HFEngine, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.batch_query

    monkeypatch.setattr(app.batch_query, "MAX_LINE_BYTES", 4096)
    queries, out = folder / "q.jsonl", folder / "a.jsonl"
    long_line = bad(question="x" * 10_000)
    queries.write_bytes(
        b"\xef\xbb\xbf"  # a byte-order mark is fine
        + json.dumps(GOOD).encode()
        + b"\n"
        + long_line.encode()
        + b"\n\xff\xfe not utf-8\n"
    )
    summary = run_batch(engine, queries, out)
    assert (summary.answered, summary.errors) == (1, 2)
    got = records(out)
    assert "longer than" in got["line-2"]["error"] and "not UTF-8" in got["line-3"]["error"]


def _drop_root_file_access() -> None:
    """For a child run as root: lose the capabilities that let root read any folder."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_root_file_access() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(
        [sys.executable, "-c", "pass"], preexec_fn=_drop_root_file_access, check=False
    )
    return probe.returncode == 0


def test_console_script_finishes_every_line_with_exit_code_3(
    tiny_model_dir: Path, folder: Path
) -> None:
    lines = [json.dumps(GOOD)]
    expected = {"good": "answer"}
    for line, ident, words in CASES.values():
        if ident != "bad":
            continue  # one line per id; the line-number cases run above
        line = line(folder) if callable(line) else line
        ident = f"bad{len(lines)}"
        lines.append(line.replace('"id": "bad"', f'"id": "{ident}"'))
        expected[ident] = words
    preexec = None
    if not IS_ROOT or _can_drop_root_file_access():
        preexec = _drop_root_file_access if IS_ROOT else None
        lines.append(bad(id="locked", image=_locked(folder)))
        expected["locked"] = "Permission denied"
    lines.append("[" * 100_000 + "]" * 100_000)
    expected[f"line-{len(lines)}"] = "nested too deeply"
    queries, out = folder / "q.jsonl", folder / "a.jsonl"
    queries.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = [VIPSTUDIO, "ask", "--batch", str(queries), "--out", str(out), "--no-log"]
    args += ["--model", str(tiny_model_dir), "--max-new-tokens", "2"]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=120, env=ENV, preexec_fn=preexec
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    got = records(out)
    assert set(got) == set(expected)
    for ident, words in expected.items():
        assert words in got[ident].get("error", "answer"), (ident, got[ident])


class _Tripping:
    """The real engine, except that one question trips it (as a tokenizer bug would)."""

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine

    def batch(self, requests: list[Any]) -> list[Any]:
        if any("trip" in r.question for r in requests):
            raise TypeError("TextEncodeInput must be Union[...]")
        return self.engine.batch(requests)


def test_an_unexpected_engine_error_fails_only_its_own_line(engine: HFEngine, folder: Path) -> None:
    queries, out = folder / "q.jsonl", folder / "a.jsonl"
    lines = [json.dumps(GOOD), bad(question="trip?"), bad(id="good2")]
    queries.write_text("\n".join(lines) + "\n")
    summary = run_batch(_Tripping(engine), queries, out)  # type: ignore[arg-type]
    assert (summary.answered, summary.errors) == (2, 1)
    got = records(out)
    assert "answer" in got["good"] and "answer" in got["good2"]
    assert got["bad"]["error_type"] == "InternalError" and "TypeError" in got["bad"]["error"]


def _small_files() -> None:
    """For a child: files may not grow past 2 kB (as on a full disk, writes fail)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_answers_that_cannot_be_written_stop_with_one_line(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    queries, out = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    queries.write_text("".join(json.dumps({**GOOD, "id": f"q{i}"}) + "\n" for i in range(12)))
    args = ["ask", "--batch", str(queries), "--out", str(out), "--no-log", "--batch-size", "2"]
    done = subprocess.run(
        [VIPSTUDIO, *args, "--model", str(tiny_model_dir), "--max-new-tokens", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        preexec_fn=_small_files,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot write the answers (File too large)" in done.stderr
    kept = out.read_bytes().split(b"\n")[:-1]  # whole lines written before the failure
    assert kept and all(json.loads(line)["answer"] is not None for line in kept)


def test_a_batch_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "q.jsonl")
    args = ["ask", "--batch", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "a.jsonl")]
    done = subprocess.run(
        [VIPSTUDIO, *args, "--no-log", "--model", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert done.returncode == 1 and "not a regular file" in done.stderr


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink", "hard link", "the log"])
def test_out_that_is_an_input_is_refused(how: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    queries, db = tmp_path / "q.jsonl", tmp_path / "log.sqlite"
    queries.write_text(json.dumps(GOOD) + "\n{not json\n")
    db.write_bytes(b"")
    out = {
        "same path": queries,
        "relative path": tmp_path / "sub" / ".." / "q.jsonl",
        "symlink": tmp_path / "link.jsonl",
        "hard link": tmp_path / "hard.jsonl",
        "the log": db,
    }[how]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.jsonl").symlink_to(queries)
    os.link(queries, tmp_path / "hard.jsonl")
    before = queries.read_bytes(), db.read_bytes()
    args = [VIPSTUDIO, "ask", "--batch", str(queries), "--out", str(out), "--db", str(db)]
    done = subprocess.run(
        [*args, "--model", str(tiny_model_dir), "--max-new-tokens", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert ("is the log" if how == "the log" else "is the --batch file") in done.stderr
    assert (queries.read_bytes(), db.read_bytes()) == before
