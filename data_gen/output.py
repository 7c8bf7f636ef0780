"""Safe output: a dataset is built in a hidden folder next to --out and moved there when complete.

A crash (an exception, a kill -9, a full disk) leaves --out as it was: absent, or the previous
export when --overwrite was given. Leftovers of killed runs are cleaned up by the next export to
the same place.

Only a folder this project wrote as an export is ever replaced: every completed export holds
:data:`EXPORT_MARKER`, written last; ``--overwrite`` checks it first and refuses any other folder
(and the root, the home folder, or a folder holding the log or a source image, marker or not).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from data_gen.errors import OutputExists, OutputRefused
from data_gen.parallel import process_alive

# The file that makes a folder "an export this project wrote" (and so replaceable).
EXPORT_MARKER = ".vipstudio-export"
_MARKER_TEXT = "A dataset written by `vipstudio export`; `--overwrite` may replace this folder.\n"


def _owner(name: str, marker: str) -> int | None:
    try:
        return int(name.split(marker, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def clean_stale(out: Path) -> list[Path]:
    """Remove what killed exports to ``out`` left behind; returns what was removed.

    A half-built ``.NAME.tmp-PID-*`` folder of a dead process is deleted. A ``.NAME.old-PID-*``
    folder (a previous export being replaced) is deleted when ``out`` exists, else moved back.
    """
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    for marker in (".tmp-", ".old-"):
        for path in sorted(out.parent.glob(f".{out.name}{marker}*")):
            pid = _owner(path.name, f".{out.name}{marker}")
            if pid is None or process_alive(pid):
                continue
            if marker == ".old-" and not out.exists():
                os.rename(path, out)
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _homes() -> set[str]:
    homes = {os.path.realpath(Path.home())}
    try:
        import pwd

        homes.add(os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir))
    except (ImportError, KeyError):  # pragma: no cover - not POSIX, or no passwd entry
        pass
    return homes


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_replaceable(out: Path, protected: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Raise :class:`OutputRefused` unless the existing folder ``out`` may be replaced.

    ``protected`` are files that must survive (the log, source images): a folder holding one
    is refused even when it is an earlier export (an export can be imported back as a source).
    """
    shown = Path(os.path.abspath(out))
    fix = "Nothing was changed: choose a new or empty folder for --out"
    if shown.is_symlink():
        raise OutputRefused(f"{shown} is a symbolic link: {fix}, or pass the folder it points to")
    real = os.path.realpath(shown)
    if real == os.path.realpath(os.sep) or any(_inside(home, real) for home in _homes()):
        what = "the root folder" if real == os.path.realpath(os.sep) else "the home folder"
        raise OutputRefused(f"refusing to replace {shown}: it is or holds {what}. {fix}")
    for path in protected:
        text = os.path.abspath(path)
        if _inside(text, real) or _inside(text, str(shown)):
            raise OutputRefused(
                f"refusing to replace {shown}: it holds {text}, which the export reads "
                f"(the log or a source image). {fix}"
            )
    if not (shown / EXPORT_MARKER).is_file() and any(shown.iterdir()):
        raise OutputRefused(
            f"refusing to replace {shown}: it is not a folder written by `vipstudio export` "
            f"(no {EXPORT_MARKER} file inside). {fix}, or delete it yourself if you mean to"
        )


@contextmanager
def staged_dir(
    out: Path, overwrite: bool = False, protected: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[Path]:
    """Yield an empty folder next to ``out``; on success it replaces ``out``, else it is removed.

    An existing ``out`` is replaced only with ``overwrite`` and when :func:`check_replaceable`
    allows it (checked before anything is written, and again just before the swap).
    """
    out = Path(os.path.abspath(out))
    kept = list(protected)
    if out.exists() and not out.is_dir():
        raise OutputExists(f"{out} is a file: pass a folder path with --out")
    if out.exists() and not overwrite:
        raise OutputExists(
            f"{out} already exists: pass --overwrite to replace it (the old export is kept "
            "until the new one is complete), or choose another --out"
        )
    if out.exists():
        check_replaceable(out, kept)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.parent / f".{out.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        yield tmp
        # The marker last: a folder holding it is a complete export.
        with open(tmp / EXPORT_MARKER, "w", encoding="utf-8") as fh:
            fh.write(_MARKER_TEXT)
        os.sync()  # every image and file of the dataset is on disk before it becomes visible
        if out.exists():
            check_replaceable(out, kept)  # it may have changed while the export ran
            old = out.parent / f".{out.name}.old-{tag}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
        with contextlib.suppress(OSError):
            fsync_path(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class JsonListWriter:
    """A JSON array written one element per line, never held in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._fh.write("[")

    def add(self, item: Any) -> None:
        self._fh.write("\n" if self.count == 0 else ",\n")
        self._fh.write(json.dumps(item, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.write("\n]\n" if self.count else "]\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


class JsonLinesWriter:
    """JSON Lines: one element per line (the same interface as :class:`JsonListWriter`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def add(self, item: Any) -> None:
        self._fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def write_json(path: Path, data: Any) -> None:
    """A small JSON file, flushed to disk."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
