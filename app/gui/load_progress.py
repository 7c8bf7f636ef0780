"""Real progress while a model loads: the checkpoint's weight files and their size, then the
tensors transformers has loaded out of them. Qt-free.

The count comes from transformers' own loading loop ("Loading weights"), observed through its
public ``transformers.utils.logging.set_tqdm_hook``; the bytes are the weight files' sizes on
disk, so "bytes read" is the loaded share of the tensors times the checkpoint's size (marked
≈). Without the hook (an older transformers), the files and size still show.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

#: At most this often a count is reported (seconds); the last one always is.
REPORT_EVERY_S = 0.05
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class LoadProgress:
    """Where a load stands. ``total`` 0: the tensors are not being read yet."""

    files: int
    total_bytes: int
    done: int = 0
    total: int = 0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def text(self) -> str:
        """``113/226 tensors · ≈1.2/2.3 MB · 1 file`` (short: it sits in the status bar)."""
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        scale, unit = (1 << 30, "GB") if self.total_bytes >= 1 << 30 else (1 << 20, "MB")
        size = f"{self.total_bytes / scale:.1f}"
        if not self.total:
            return f"reading the checkpoint: {size} {unit} in {files}"
        read = f"{self.total_bytes * self.fraction / scale:.1f}"
        return f"{self.done}/{self.total} tensors · ≈{read}/{size} {unit} · {files}"


def weight_files(folder: Path | None) -> list[Path]:
    """The checkpoint's weight files in ``folder`` (safetensors shards, else .bin files)."""
    if folder is None or not folder.is_dir():
        return []
    for suffix in WEIGHT_SUFFIXES:
        found = sorted(p for p in folder.iterdir() if p.suffix == suffix and p.is_file())
        if found:
            return found
    return []


class _Counting:
    """transformers' progress bar of the weights, counting what its loop takes out of it."""

    def __init__(self, bar: Any, total: int, report: Callable[[int, int], None]) -> None:
        self._bar, self._total, self._report = bar, total, report

    def __iter__(self) -> Iterator[Any]:
        for done, item in enumerate(self._bar, 1):
            yield item
            self._report(done, self._total)

    def __enter__(self) -> _Counting:
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self._bar, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bar, name)


_HOOK_LOCK = threading.Lock()


@contextlib.contextmanager
def reporting(folder: Path | None, report: Callable[[LoadProgress], object]) -> Iterator[None]:
    """While a model loads from ``folder`` (a local folder or cached snapshot), call
    ``report`` with a :class:`LoadProgress`: once with the files and their size, then as
    tensors are loaded (throttled; the last always)."""
    files = weight_files(folder)
    base = LoadProgress(len(files), sum(p.stat().st_size for p in files))
    report(base)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        yield
        return
    set_hook = getattr(hf_logging, "set_tqdm_hook", None)
    if set_hook is None:  # an older transformers: the files and size are all we can say
        yield
        return
    last = [0.0]

    def counted(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= REPORT_EVERY_S:
            last[0] = now
            report(replace(base, done=done, total=total))

    def hook(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bar = factory(*args, **kwargs)
        iterable = args[0] if args else kwargs.get("iterable")
        if kwargs.get("desc") != "Loading weights" or not isinstance(iterable, Sized):
            return bar
        return _Counting(bar, len(iterable), counted)

    with _HOOK_LOCK:  # one load at a time sets the (process-wide) hook
        previous = set_hook(hook)
        try:
            yield
        finally:
            set_hook(previous)
