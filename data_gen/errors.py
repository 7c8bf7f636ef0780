"""Named exceptions of data_gen. Messages say what happened and what the user can do."""

from __future__ import annotations


class DataGenError(Exception):
    """Base class of every error raised by `data_gen`."""


class InvalidSelection(DataGenError, ValueError):
    """Export filters or options that cannot work together (bad date, unknown status, …)."""


class OutputExists(DataGenError):
    """The output folder exists and ``overwrite`` was not given."""


class OutputRefused(OutputExists):
    """--out is a folder an export must never replace (not an earlier export, the home folder,
    a folder holding the log or a source image); nothing was changed."""


class ExportFailed(DataGenError):
    """An export stopped (strict mode, unreadable image, disk full); nothing was left at --out."""


class ImportFailed(DataGenError):
    """An import file cannot be imported at all (unreadable, wrong format, already imported)."""


class RecordRefused(DataGenError):
    """A format cannot carry one record (skipped with ``reason`` in the summary, or --strict)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
