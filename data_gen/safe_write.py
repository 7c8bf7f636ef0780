"""Safe writes for files a user cares about: a temporary file in the same folder, fsync, then an
atomic rename over the target. A crash or an error leaves the previous file as it was.

What is replaced is only ever a regular file that is not an SQLite database (a log) nor one of
the command's own inputs: those are refused before anything is written (:class:`OutputRefused`).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_SQLITE_HEADER = b"SQLite format 3\x00"


class OutputRefused(OSError):
    """An output path that must not be replaced; the message says why and what to do."""


def check_output_file(
    path: str | os.PathLike[str], protect: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Raise :class:`OutputRefused` when writing ``path`` would replace something it must not:
    a folder, a device or other special file, an SQLite database, or one of ``protect``."""
    target = Path(path)
    fix = "nothing was changed: choose another output file"
    try:
        info = target.stat()
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise OutputRefused(
            f"{target}: cannot write: a part of its folder path is a file, not a folder"
        ) from None
    except OSError as exc:
        raise OutputRefused(f"{target}: cannot write ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputRefused(f"{target} is a folder: give a file name for the output")
    if not stat.S_ISREG(info.st_mode):
        raise OutputRefused(f"refusing to replace {target}: it is not a regular file; {fix}")
    for other in protect:
        try:
            if os.path.samefile(target, other):
                raise OutputRefused(f"refusing to replace {target}: it is an input; {fix}")
        except FileNotFoundError:
            continue
    try:
        with open(target, "rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
    except OSError:
        return  # unreadable: the write reports whether it can replace it
    if header == _SQLITE_HEADER:
        raise OutputRefused(
            f"refusing to replace {target}: it is an SQLite database (a log?); {fix}"
        )


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    suffix: str = "",
    permissions: int | None = None,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing (text mode "w" is UTF-8, binary "wb");
    on a clean exit it is flushed, fsynced, given ``permissions`` and renamed to ``path``.

    Refuses (before writing anything) what :func:`check_output_file` refuses; ``protect`` are
    the command's inputs."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    check_output_file(target, protect)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if permissions is not None:
            os.chmod(tmp, permissions)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
