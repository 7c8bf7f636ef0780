"""The files of an ``ask --batch`` run: images read with a timeout, the answers file.

Nothing here may stop a batch on one line's account: an image that cannot be read within its
timeout becomes that line's error; only the queries or answers file itself failing stops the run
(:class:`BatchFileError`), keeping every answer written so far.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

import overlays as ov
from app.batch_query import BadQuery, read_lines
from data_gen.qalog.log_types import file_sha256
from data_gen.safe_write import atomic_write

#: Seconds one image may take to read and decode before its line becomes an error record.
READ_TIMEOUT_S = 60.0


class ImageTimeout(ov.ImageUnreadable):
    """Reading an image took longer than its timeout (a network drive that stopped answering)."""


class BatchFileError(Exception):
    """The queries or the answers file cannot be read or written; the run stops."""


class OutIsAnInput(BatchFileError):
    """The answers file would be one of the run's inputs (the queries, the log)."""


def check_files(queries: Path, out: Path, log: Path | None) -> None:
    """Before anything is written: ``queries`` must be a readable regular file, and ``out`` a
    regular file (or none yet) that is not an input by any name (path, symlink, hard link).

    Raises :class:`OutIsAnInput` or :class:`BatchFileError`.
    """
    try:
        mode = queries.stat().st_mode
        if stat.S_ISREG(mode):
            queries.open("rb").close()
    except FileNotFoundError:
        raise BatchFileError(f"{queries}: no such file") from None
    except OSError as exc:
        raise BatchFileError(f"{queries}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise BatchFileError(f"{queries}: not a regular file: give --batch a JSONL file")
    suggestion = queries.with_name(f"{queries.stem}.answers.jsonl")
    if _same_file(out, queries):
        raise OutIsAnInput(
            f"--out {out} is the --batch file itself: the answers would overwrite the queries; "
            f"write them to another file, e.g. --out {suggestion}"
        )
    if log is not None and any(
        _same_file(out, log.with_name(log.name + suffix)) for suffix in ("", "-wal", "-shm")
    ):
        raise OutIsAnInput(
            f"--out {out} is the log ({log}): the answers would corrupt it; "
            f"write them to another file, e.g. --out {suggestion}"
        )
    try:
        if out.exists() and not stat.S_ISREG(out.stat().st_mode):
            raise OutIsAnInput(f"--out {out} is not a regular file: answers are appended to one")
    except OSError as exc:
        raise BatchFileError(f"{out}: cannot be read ({exc.strerror})") from None


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same real path (symlinks resolved) or, both
    existing, the same inode (a hard link)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


class AnswersFile:
    """The answers file, appended to without a buffer of our own: a write that fails (a full
    disk) stops the run with a :class:`BatchFileError`, the lines written before it stay, and
    nothing is left to fail again on close (a torn last line is dropped by the rerun)."""

    def __init__(self, fh: BinaryIO, path: Path) -> None:
        self.fh = fh
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        data = memoryview((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        try:
            while data:
                data = data[self.fh.write(data) or 0 :]
        except OSError as exc:
            raise self._failed(exc) from None

    def sync(self) -> None:
        try:
            os.fsync(self.fh.fileno())
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> BatchFileError:
        return BatchFileError(
            f"{self.path}: cannot write the answers ({exc.strerror or exc}); the answers written "
            "so far are kept: fix this and rerun to finish"
        )


def read_image(
    path: Path,
    max_pixels: int,
    timeout_s: float = READ_TIMEOUT_S,
    forbidden: frozenset[tuple[int, int]] = frozenset(),
    sha256: bool = False,
) -> tuple[Image.Image, str | None]:
    """:func:`overlays.load_image` (which opens regular files only, never blocking on a FIFO)
    and, with ``sha256``, the file's hash for the log; given up after ``timeout_s``.
    ``forbidden`` holds ``(st_dev, st_ino)`` of files that must not be read as images: the
    queries, the answers and the log.

    The read runs on a daemon thread: a read stuck in the kernel cannot be interrupted, but it
    must hold up neither the batch nor the process's exit.
    """
    result: list[tuple[Image.Image, str | None] | BaseException] = []

    def read() -> None:
        try:
            try:
                st: os.stat_result | None = os.stat(path)
            except (OSError, ValueError):
                st = None  # load_image says what is wrong
            if st is not None and (st.st_dev, st.st_ino) in forbidden:
                raise BadQuery(f"{path}: is the queries, the answers or the log, not an image")
            image = ov.load_image(path, max_pixels=max_pixels)
            result.append((image, file_sha256(path) if sha256 else None))
        except BaseException as exc:  # handed to the waiting thread, raised there
            result.append(exc)

    reader = threading.Thread(target=read, name=f"read {path.name}", daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not result:
        raise ImageTimeout(
            f"{path}: reading the image took over {timeout_s:g} s (a network drive that does not "
            "answer?); the line was skipped, rerun to retry it"
        )
    outcome = result[0]
    if isinstance(outcome, BaseException):
        if isinstance(outcome, OSError):  # the stat, or the file changed between reads
            raise ov.ImageUnreadable(f"{path}: cannot be read ({outcome.strerror})") from None
        if isinstance(outcome, ValueError):  # a path the OS cannot take (cannot pass the parser)
            raise ov.ImageUnreadable(f"{str(path)!a}: not a valid file path") from None
        raise outcome
    return outcome


def load_previous(out: Path) -> set[str]:
    """Ids already answered in ``out``. Error records and a torn last line are dropped from the
    file (rewritten atomically) so that the rerun retries them without duplicates.

    Raises :class:`BatchFileError` for a file that is not an answers file (a photo, the queries,
    someone's notes): it is never rewritten.
    """
    if not out.exists():
        return set()
    if not stat.S_ISREG(out.stat().st_mode):
        raise BatchFileError(f"{out}: not a regular file: write the answers to a file")
    with out.open("rb") as head:
        start = head.read(len(_RECORD_START))
    if start and start != _RECORD_START:
        raise _foreign(out, 1)
    kept: list[str] = []
    done: set[str] = set()
    dropped = 0
    with out.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            ours = (
                isinstance(record, dict)
                and isinstance(record.get("id"), str)
                and ("answer" in record or "error" in record)
            )
            # The last line cut short by a kill or a full disk: begun by us, and not a query.
            torn = not line.endswith("\n") and (
                ours or (record is None and line.startswith(_RECORD_START.decode()))
            )
            if torn:
                dropped += 1
                continue
            if not ours or not isinstance(record, dict):
                raise _foreign(out, number)
            if "error" in record or record["id"] in done:
                dropped += 1
                continue
            done.add(record["id"])
            kept.append(line)
    if dropped:
        with atomic_write(out) as fh:
            fh.writelines(kept)
    return done


#: How every record we write begins (``json.dumps`` of a dict whose first key is "id").
_RECORD_START = b'{"id": '


def _foreign(out: Path, number: int) -> BatchFileError:
    return BatchFileError(
        f"{out}: line {number} is not an answer of ask --batch, so this is not an answers file "
        "(it was left as it is): give --out a new file, or the answers file of an earlier run"
    )


def read_queries(fh: BinaryIO, path: Path) -> Iterator[tuple[int, str | BadQuery]]:
    try:
        yield from read_lines(fh)
    except OSError as exc:
        raise BatchFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


__all__ = [
    "READ_TIMEOUT_S",
    "AnswersFile",
    "BatchFileError",
    "ImageTimeout",
    "OutIsAnInput",
    "check_files",
    "load_previous",
    "read_image",
    "read_queries",
]
