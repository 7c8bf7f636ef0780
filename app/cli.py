"""The `vipstudio` command: parse arguments, call the library, report. Nothing else.

Exit codes: 0 success; 1 the work failed (bad input data, unreadable image, model or server
error) with one line on stderr; 2 the command line itself is wrong (click's usage errors).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from overlays import OverlayError

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A failure reported as ``Error: <message>`` with exit code 1."""

    exit_code = 1


@contextmanager
def reported(*kinds: type[Exception]) -> Iterator[None]:
    """Turn the core's named exceptions into one clear line and exit code 1."""
    caught: tuple[type[Exception], ...] = (OverlayError, *kinds)
    try:
        yield
    except caught as exc:
        raise CliError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="vip-studio")
def main() -> None:
    """ViP Studio: draw visual prompts on images, ask ViP-LLaVA about regions, build datasets."""


def _register() -> None:
    """Add every command module ``app/cmd_*.py`` (each has ``register(main)``), sorted by name."""
    import importlib
    import pkgutil

    import app

    for info in sorted(pkgutil.iter_modules(app.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"app.{info.name}").register(main)


_register()


def write_line(text: str) -> None:
    click.echo(text, err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["CliError", "Path", "main", "reported", "write_line"]
