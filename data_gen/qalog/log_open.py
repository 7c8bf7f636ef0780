"""Opening a Q&A log file: ours or refused, read-write or read-only. Qt-free.

A file is ours when it carries :data:`.log_schema.APPLICATION_ID`, is empty (a new log), or
is an unmarked log of an earlier ViP Studio (recognised by its tables, then stamped). Any other
SQLite file is refused before anything is written to it: no migration, no WAL switch.

Read-only opening serves the reading commands (`log stats|list|show`, `export`, `report`) for a
log in a read-only folder or file: ``mode=ro``, and ``immutable=1`` when the log is in WAL mode
and SQLite cannot create its ``-shm`` file there (nobody can write such a folder meanwhile).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from data_gen.qalog.log_schema import (
    APPLICATION_ID,
    LEGACY_TABLES,
    LEGACY_TURN_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
)
from data_gen.qalog.log_types import LogCorrupt, LogError, LogForeign, LogReadOnly, LogSchemaTooNew

OpenMode = Literal["rw", "ro", "auto"]
Kind = Literal["ours", "empty", "legacy"]


def writable(path: Path) -> bool:
    """Whether the log and what SQLite writes beside it (journal, -wal, -shm) can be written."""
    folder = path.parent if path.parent.exists() else None
    if folder is not None and not os.access(folder, os.W_OK):
        return False
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists() and not os.access(p, os.W_OK):
            return False
    return True


def read_only_hint(path: Path) -> str:
    return (
        f"{path} (or its folder) is read-only: reading commands (log stats, log list, log show, "
        "export, report) still work; to write, make it writable or pass another file with --db"
    )


def corrupt_message(path: Path, detail: str) -> str:
    return (
        f"{path} is damaged or not an SQLite file ({detail}). Nothing was changed: keep a copy, "
        "try `sqlite3 FILE .recover`, or pass another file with --db"
    )


def connect_read_only(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A read-only connection (``query_only``) to a log of ours, checked; falls back to
    ``immutable`` for a WAL log whose ``-shm`` cannot be created."""
    if not path.exists():
        raise LogError(f"{path}: no such log")
    try:
        conn = _read_only(path, busy_timeout_s)
    except sqlite3.DatabaseError as exc:
        raise LogCorrupt(corrupt_message(path, str(exc))) from None
    try:
        if identify(conn, path) == "empty":
            raise LogError(f"{path} is empty: no log yet; ask a question first")
        check_version(conn, path)  # an older one is read as it is: it cannot migrate
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LogCorrupt(corrupt_message(path, str(exc))) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _read_only(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    uri = "file:" + quote(str(path.absolute()))
    last: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(
            uri + query,
            uri=True,
            timeout=busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            conn.close()
            last = exc
            if "unable to open" not in str(exc) and "readonly" not in str(exc):
                raise
            wal = Path(f"{path}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                # immutable would silently miss the answers still in the -wal file
                raise LogReadOnly(
                    f"{path} has recent changes in {wal.name} that cannot be read in a read-only "
                    "folder: open it once where it is writable, or copy the folder"
                ) from None
            continue
        conn.execute("PRAGMA query_only = ON")
        return conn
    raise LogError(f"cannot open the log {path} read-only: {last}")


def identify(conn: sqlite3.Connection, path: Path) -> Kind:
    """What the open file is; raises :class:`LogForeign` for another program's database."""
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if app_id == APPLICATION_ID:
        return "ours"
    if app_id != 0:
        raise LogForeign(
            f"{path} is another program's SQLite database (application_id {app_id}), not a "
            "ViP Studio log; it was not changed: pass another file with --db"
        )
    tables = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if not tables and version == 0:
        return "empty"
    expected = LEGACY_TABLES.get(version)
    if expected is not None and expected <= tables:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(turns)")}
        if columns >= LEGACY_TURN_COLUMNS:
            return "legacy"
    raise LogForeign(
        f"{path} is an SQLite database but not a ViP Studio log (no ViP Studio mark, tables "
        f"{', '.join(sorted(tables)) or 'none'}, user_version {version}); it was not changed: "
        "pass another file with --db"
    )


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; raises :class:`LogSchemaTooNew` past this ViP Studio's."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise LogSchemaTooNew(
            f"{path} has log schema version {version}, newer than this ViP Studio reads "
            f"({SCHEMA_VERSION}): upgrade vip-studio"
        )
    return version


def needs_setup(kind: Kind, version: int) -> bool:
    """Whether a writable open must stamp or migrate the file."""
    return kind != "ours" or version < SCHEMA_VERSION


def set_up(conn: sqlite3.Connection, path: Path) -> None:
    """Stamp the file as ours and migrate it to the current schema, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        identify(conn, path)  # again, under the write lock
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        for target in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[target]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


__all__ = [
    "APPLICATION_ID",
    "Kind",
    "OpenMode",
    "check_version",
    "connect_read_only",
    "corrupt_message",
    "identify",
    "needs_setup",
    "read_only_hint",
    "set_up",
    "writable",
]
