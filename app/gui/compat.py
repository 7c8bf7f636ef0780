"""Work around a reference-counting bug of PySide6 6.12 on Python 3.11.

PySide6 6.12.0 releases one reference too many to the ``None`` a void method returns
(``label.setText``, ``widget.update``, ``processEvents``…) and to the ``True`` of
``Signal.emit``. From Python 3.12 on these objects are immortal, so nothing happens; on 3.11
their counts fall with every call until the interpreter aborts ("deallocating None") — within
seconds of drawing when nothing else holds many references to them. 6.11.3 does not have the bug.

The fix here makes those singletons effectively immortal on 3.11, as 3.12 does: their counts
get a very large head start. They are never freed in a running interpreter anyway.
"""

from __future__ import annotations

import ctypes
import sys
from importlib import metadata

HEAD_START = 1 << 40


def affected() -> bool:
    """True when this PySide6 and this Python have the bug."""
    if sys.version_info >= (3, 12):
        return False
    # Read the installed version without importing Qt (the core modules stay Qt-free).
    for dist in ("PySide6-Essentials", "PySide6"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
        return tuple(parts) >= (6, 12)
    return False


_done = False


def guard_singletons() -> bool:
    """Apply the work-around once if needed; returns whether it was applied."""
    global _done
    if _done or not affected():
        return _done
    for obj in (None, True, False):
        # CPython 3.11 objects start with their reference count (Py_ssize_t ob_refcnt).
        ctypes.c_ssize_t.from_address(id(obj)).value += HEAD_START
    _done = True
    return True
