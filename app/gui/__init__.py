"""The ViP Studio desktop app (PySide6): draw visual prompts, ask ViP-LLaVA, review answers.

Widgets hold no logic: they call `overlays`, `vip_model` (through `app.gui.workers`) and the Q&A
log (through `app.gui.writer`, its single writer). Heavy work runs off the GUI thread.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.gui.compat import guard_singletons

guard_singletons()  # before any Qt call: PySide6 6.12 on Python 3.11 (see compat.py)


def run(
    target: Path | None = None,
    *,
    db: Path | None = None,
    model: str | None = None,
    server: str | None = None,
    token: str | None = None,
    sam: Path | None = None,
    settings_path: Path | None = None,
    labels: Path | None = None,
) -> int:
    """Open the main window (on ``target``, an image or a folder) and run the event loop."""
    from app.gui import logproc

    logproc.prestart()  # the log process boots while Qt and the window load
    from PySide6.QtWidgets import QApplication

    from app.gui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ViP Studio")
    app.setOrganizationName("vipstudio")
    overrides: dict[str, str] = {}
    if db is not None:
        overrides["db_path"] = str(db)
    if model is not None:
        overrides["model"] = model
        overrides["server_url"] = ""
    if server is not None:
        overrides["server_url"] = server
    if token is not None:
        overrides["server_token"] = token
    if sam is not None:  # Box → mask uses SAM from this folder
        overrides["sam_model"] = str(sam)
        overrides["assist_method"] = "sam"
    window = MainWindow(settings_path=settings_path, overrides=overrides, labels_file=labels)
    window.show()
    if target is not None:
        window.open_target(target)  # also into File → Open Recent
    else:
        window.restore_last()
    if window.labels.given is not None:  # no folder was opened: the list is used as it is
        window.labels.use_given()
    code = int(app.exec())
    if window.background_busy():
        # A generation stuck in the model (or a big decode) would hold the interpreter's exit
        # for seconds; the log process has already finished its writes (window.closeEvent).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no interpreter teardown: it would wait for the stuck threads
    return code


__all__ = ["run"]
