"""`ask --batch --ray` on the command line: wrong combinations are usage errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--actors", "2"], "--actors only work(s) with --batch … --ray"),
        (["--address", "ray://head:10001", "--gpus-per-actor", "1"], "--address, --gpus-per-actor"),
        (["--ray", "--out", "FILE"], "is a file: with --ray, --out is a folder of shards"),
    ],
)
def test_ray_flags_misused(args: list[str], words: str, tmp_path: Path) -> None:
    queries, file = tmp_path / "q.jsonl", tmp_path / "answers.jsonl"
    queries.write_text('{"id": "a"}\n')
    file.write_text("")
    args = [str(file) if a == "FILE" else a for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, ["ask", "--batch", str(queries), "--no-log", *args])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())


def test_ray_without_batch_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ask", "photo.jpg", "q?", "--ray"])
    assert result.exit_code == 2 and "--ray works with --batch FILE only" in result.output
