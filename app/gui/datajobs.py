"""Export, import and report for the desktop app: the same ``data_gen`` calls as `vipstudio
export|import|report` (app/cmd_data.py), run in a child process.

Why a child: the app's process must hold no connection to the log (see
:mod:`app.gui.logproc`: any descriptor of the log closed in the app's process drops its SQLite
locks). The child is started with ``python -c`` (no Qt, none of the app's descriptors), gets one
job on stdin, and answers with ``("progress", done, total)`` messages, then one of
``("done", JobResult)``, ``("error", message)`` or ``("cancelled",)``. A ``("cancel",)`` message
(or the app closing the pipe) stops an export at its next record; staging leaves nothing at
the output then. An import is one transaction and is not stopped half-way.

Refusals are the CLI's own messages, word for word: the child opens the log with the CLI's
``open_log`` and checks outputs with its ``refuse_source_output``. Qt-free.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.gui.logproc import child_env, receive, send

if TYPE_CHECKING:
    from data_gen.base import ExportOptions

PROGRESS_EVERY_S = 0.1


@dataclass(frozen=True)
class ExportJob:
    db: Path
    options: ExportOptions


@dataclass(frozen=True)
class ImportJob:
    db: Path
    format: str
    file: Path
    images_dir: Path | None = None
    dry_run: bool = False
    strict: bool = False
    again: bool = False


@dataclass(frozen=True)
class ReportJob:
    db: Path
    review: tuple[str, ...] = ()
    plot: Path | None = None


Job = ExportJob | ImportJob | ReportJob


@dataclass(frozen=True)
class JobResult:
    """What a finished job reports: the CLI's summary lines and its ``--json`` data."""

    kind: str
    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None  # e.g. an import where every entry was invalid


class JobFailed(Exception):
    """The job was refused or failed; the message is the one the CLI prints."""


class JobCancelled(Exception):
    """The job was stopped on request; nothing was written."""


# -- the app's side --------------------------------------------------------------------------


class JobHandle:
    """Lets the GUI thread cancel a job that runs in :func:`run_job` on a worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self.cancel_requested = False

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._proc = proc
            if self.cancel_requested:
                self._send_cancel()

    def cancel(self) -> None:
        """Ask the job to stop (thread-safe); it answers ``("cancelled",)`` when it has."""
        with self._lock:
            self.cancel_requested = True
            self._send_cancel()

    def _send_cancel(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):  # it just ended
                send(proc.stdin, ("cancel",))


def run_job(job: Job, handle: JobHandle) -> Generator[tuple[int, int | None], None, JobResult]:
    """Run ``job`` in a child process; yield ``(done, total)`` progress; return its result.
    Raises :class:`JobFailed` (with the CLI's message) or :class:`JobCancelled`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from app.gui.datajobs import child_main; child_main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        send(proc.stdin, job)
        handle.attach(proc)  # after the job: a cancel asked meanwhile is sent now
        while True:
            try:
                message = receive(proc.stdout)
            except EOFError:
                code = proc.wait()
                raise JobFailed(f"the {_kind(job)} process stopped (exit code {code})") from None
            if message[0] == "progress":
                yield message[1], message[2]
            elif message[0] == "done":
                result: JobResult = message[1]
                return result
            elif message[0] == "error":
                raise JobFailed(message[1])
            else:
                raise JobCancelled(f"{_kind(job)} stopped: nothing was written")
    finally:
        for fh in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                fh.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kind(job: Job) -> str:
    return {ExportJob: "export", ImportJob: "import", ReportJob: "report"}[type(job)]


# -- the child's side ------------------------------------------------------------------------


def _export(job: ExportJob, progress: Callable[[int, int | None], None]) -> JobResult:
    from app.cmd_log import open_log
    from data_gen.export import export

    with open_log(job.db, create=False, read=True) as log:
        summary = export(log, job.options, on_progress=progress)
    return JobResult("export", summary.lines(), summary.to_dict())


def _import(job: ImportJob, progress: Callable[[int, int | None], None]) -> JobResult:
    from app.cmd_log import open_log
    from data_gen.importers import import_file

    if not job.file.exists():
        raise JobFailed(f"{job.file}: no such file: choose the annotation file to import")
    with open_log(job.db) as log:
        report = import_file(
            log,
            job.format,
            job.file,
            images_dir=job.images_dir,
            dry_run=job.dry_run,
            strict=job.strict,
            again=job.again,
        )
    warning = None
    if not report.regions and not report.turns and report.invalid:
        warning = f"nothing could be imported from {job.file}: every entry is invalid"
    return JobResult("import", report.lines(), dict(report.__dict__), warning)


def _report(job: ReportJob, progress: Callable[[int, int | None], None]) -> JobResult:
    from app.cmd_log import open_log, refuse_source_output
    from data_gen.report import collect_stats
    from data_gen.report import plot as draw

    with open_log(job.db, create=False, read=True) as log:
        refuse_source_output(log, job.plot)
        stats = collect_stats(log, review=job.review)
    lines = stats.lines()
    if job.plot is not None:
        draw(stats, job.plot)
        lines.append(f"plot: {job.plot}")
    return JobResult("report", lines, stats.to_dict())


def _message(exc: BaseException) -> str:
    import click

    if isinstance(exc, click.ClickException):
        return exc.format_message()
    return str(exc) or type(exc).__name__


def child_main() -> None:
    """Entry point of the child (``python -c``): one job from stdin, messages on stdout."""
    import signal

    from data_gen.errors import DataGenError
    from data_gen.qalog.log import LogError
    from overlays import OverlayError

    # Ctrl+C in a terminal reaches the whole process group: the app decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    job = receive(inp)
    cancel = threading.Event()

    def listen() -> None:
        try:
            while receive(inp) != ("cancel",):
                pass
        except (EOFError, OSError):
            pass  # the app closed the pipe or is gone: stop too
        cancel.set()

    threading.Thread(target=listen, name="job-cancel", daemon=True).start()
    last = [0.0]

    def progress(done: int, total: int | None) -> None:
        if cancel.is_set():
            raise JobCancelled
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or (total is not None and done >= total):
            last[0] = now
            send(out, ("progress", done, total))

    import click

    runs: dict[type, Callable[[Any, Callable[[int, int | None], None]], JobResult]] = {
        ExportJob: _export,
        ImportJob: _import,
        ReportJob: _report,
    }
    run = runs[type(job)]

    try:
        reply: tuple[Any, ...] = ("done", run(job, progress))
    except JobCancelled:
        reply = ("cancelled",)
    except (
        JobFailed,
        DataGenError,
        LogError,
        OverlayError,
        OSError,
        click.ClickException,
    ) as exc:
        reply = ("error", _message(exc))
    with contextlib.suppress(OSError):  # the app is gone
        send(out, reply)
