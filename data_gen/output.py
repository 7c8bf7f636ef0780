"""Safe output: a dataset is built in a hidden folder next to --out and moved there when complete.

A crash (an exception, a kill -9, a full disk) leaves --out as it was: absent, or the previous
export when --overwrite was given. Leftovers of killed runs are cleaned up by the next export to
the same place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from data_gen.errors import OutputExists


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            if pid is None or _alive(pid):
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


@contextmanager
def staged_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty folder next to ``out``; on success it replaces ``out``, else it is removed."""
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise OutputExists(f"{out} is a file: pass a folder path with --out")
    if out.exists() and not overwrite:
        raise OutputExists(
            f"{out} already exists: pass --overwrite to replace it (the old export is kept "
            "until the new one is complete), or choose another --out"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.parent / f".{out.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        yield tmp
        os.sync()  # every image and file of the dataset is on disk before it becomes visible
        if out.exists():
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
