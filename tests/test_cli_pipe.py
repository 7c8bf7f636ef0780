"""A closed stdout (`vipstudio log stats | head -1`, the reader gone before the output) is quiet:
exit 141 (128 + SIGPIPE, as a shell reports for `yes | head -1`), no traceback, no "bug" line —
through the real executable and a real pipe. Any other broken pipe is still reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app import cli
from data_gen.qalog.log import QALog

VIPSTUDIO = Path(sys.executable).parent / "vipstudio"


def _to_closed_pipe(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run vipstudio with stdout on a pipe whose reader has already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [str(VIPSTUDIO), *map(str, args)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={**os.environ, "VIPSTUDIO_DEBUG": ""},
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "argv",
    [["log", "stats"], ["--help"], ["export", "--help"]],
    ids=["log-stats", "help", "export-help"],
)
def test_a_closed_stdout_is_quiet(argv: list[str], tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    QALog.open(db).close()
    if argv[0] == "log":
        argv = [*argv, "--db", str(db)]
    done = _to_closed_pipe(*argv)
    assert done.stderr == "" and done.returncode == cli.EXIT_PIPE == 141


def test_reading_one_line_then_closing_is_quiet(tmp_path: Path) -> None:
    """`vipstudio log list | head -1` on a log longer than the pipe holds."""
    import overlays as ov
    from data_gen.qalog.log import ImageFile, NewTurn

    db = tmp_path / "log.sqlite"
    sample = Path(__file__).resolve().parent.parent / "assets" / "samples" / "coffee.jpg"
    with QALog.open(db) as log:
        session = log.record_turn(
            NewTurn(0, [ov.Rectangle((1, 2, 30, 40))], "q?", "a", "m", "llava_v1"),
            image=ImageFile.read(sample),
        ).session_id
        for i in range(3000):
            log.add_turn(
                NewTurn(session, [ov.Rectangle((1, 2, 30, 40))], f"q {i}?", "a" * 40, "m", "x")
            )
    proc = subprocess.Popen(
        [str(VIPSTUDIO), "log", "list", "--db", str(db), "--limit", "3001"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) in (0, cli.EXIT_PIPE)
    assert proc.stderr.read() == ""


def test_a_broken_pipe_elsewhere_is_still_reported() -> None:
    """A broken connection (not stdout) is a failure: the safety net's one line, exit 1."""

    @click.command("pipe-for-test")
    def pipe() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    group = cli.main
    assert isinstance(group, click.Group)
    cli.all_commands()
    group.add_command(pipe)
    try:
        result = CliRunner().invoke(group, ["pipe-for-test"], env={"VIPSTUDIO_DEBUG": None})
        assert result.exit_code == 1
        assert "unexpected BrokenPipeError" in result.stderr
    finally:
        group.commands.pop("pipe-for-test")
