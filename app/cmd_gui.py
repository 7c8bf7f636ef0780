"""`vipstudio gui`: open the desktop app."""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

import click

from app.cli import CliError

# Libraries Qt's xcb plugin loads; when one is missing Qt aborts with a misleading message.
_XCB_LIBS = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
}


def display_problem(env: dict[str, str] | None = None) -> str | None:
    """Why Qt could not open a window here (Linux), or None. Qt itself would abort instead."""
    env = dict(os.environ) if env is None else env
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, vnc…: the user chose
    if not platform and env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY"):
        return (
            "no display to open a window on (DISPLAY is not set): run it on a desktop, over "
            "`ssh -X`, or under Xvfb (`xvfb-run vipstudio gui ...`)"
        )
    missing = [pkg for lib, pkg in _XCB_LIBS.items() if ctypes.util.find_library(lib) is None]
    if missing:
        return (
            "Qt's X11 plugin needs system libraries that are missing: install them "
            f"(Debian/Ubuntu: `sudo apt-get install {' '.join(missing)}`)"
        )
    return None


@click.command("gui")
@click.argument(
    "target",
    required=False,
    type=click.Path(exists=True, path_type=Path),
    metavar="[IMAGE|FOLDER|VIDEO]",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The Q&A log file for this run (default: the one in Settings, else the per-user log).",
)
@click.option(
    "--model",
    default=None,
    metavar="ID|FOLDER",
    help="ViP-LLaVA hub id (read from the local cache only) or model folder, for this run.",
)
@click.option(
    "--server",
    default=None,
    metavar="URL",
    help="Use the model of a `vipstudio serve` server at URL instead of loading one.",
)
@click.option(
    "--token",
    default=None,
    envvar="VIPSTUDIO_TOKEN",
    help="Token for --server (or $VIPSTUDIO_TOKEN).",
)
@click.option(
    "--sam",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="FOLDER",
    help="SAM or SAM 2 checkpoint folder for Box → mask, for this run (never downloaded).",
)
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file to use (default: per user, or $VIPSTUDIO_GUI_SETTINGS).",
)
@click.option(
    "--labels",
    "labels",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="The label list (one label per line; created if missing) for the folder opened; "
    "remembered for that folder.",
)
def gui(
    target: Path | None,
    db: Path | None,
    model: str | None,
    server: str | None,
    token: str | None,
    sam: Path | None,
    settings_path: Path | None,
    labels: Path | None,
) -> None:
    """Open the desktop app on an image, a video, or a folder of images and videos.

    Draw visual prompts (rectangle, ellipse, point, triangle, arrow, scribble, mask, mask
    contour), ask ViP-LLaVA about the marked regions, and review the answers; every answer is
    saved to the Q&A log at once, and what you draw is autosaved. Options given here apply to
    this run only; File → Settings stores them. Without a model the app still opens: drawing
    and review work, and the chat panel says how to get one.

    \b
      vipstudio gui assets/samples
      vipstudio gui photo.jpg --model ~/models/vip-llava-7b-hf
      vipstudio gui clip.mp4
      vipstudio gui photos/ --server http://gpu-box:8000 --token "$TOKEN" --db team.sqlite
      vipstudio gui frames/ --labels classes.txt
    """
    if server is not None and not server.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--server")
    problem = display_problem()
    if problem is not None:
        raise CliError(f"the desktop app cannot start: {problem}")
    try:
        import PySide6.QtWidgets  # noqa: F401  (app.gui imports Qt only once it runs)

        from app.gui import run
    except ImportError as exc:  # PySide6 missing or its Qt libraries cannot load
        raise CliError(
            f"the desktop app cannot start: {exc}. Install the [gui] extra "
            "(pip install 'vip-studio[gui]'), and on Linux the Qt system libraries "
            "(libxcb-cursor0, libxkbcommon-x11-0)"
        ) from None
    code = run(
        target,
        db=db,
        model=model,
        server=server,
        token=token,
        sam=sam,
        settings_path=settings_path,
        labels=labels,
    )
    if code:
        raise SystemExit(code)


def register(main: click.Group) -> None:
    main.add_command(gui)
