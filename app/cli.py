"""The `vipstudio` command: parse arguments, call the library, report. Nothing else.

Exit codes: 0 success; 1 the work failed (bad input data, unreadable image, model or server
error) with one line on stderr; 2 the command line itself is wrong (click's usage errors).
An unexpected exception (a bug) is also one line and exit 1; `--debug` or `VIPSTUDIO_DEBUG=1`
shows its traceback. A closed stdout (`vipstudio log list | head -1`) is quiet: exit 141.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from overlays import OverlayError

F = TypeVar("F", bound=Callable[..., Any])

#: The exit code when the reader of stdout has gone: 128 + SIGPIPE, as a shell reports for
#: `yes | head -1`, so that `set -o pipefail` scripts see what they see of any Unix tool.
EXIT_PIPE = 141


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


class _LazyGroup(click.Group):
    """Registers every command module ``app/cmd_*.py`` (each has ``register(main)``) on first
    use, so that importing one command module never imports the others (or itself, circularly).
    """

    _registered = False

    def _register(self) -> None:
        if _LazyGroup._registered:
            return
        _LazyGroup._registered = True
        import importlib
        import pkgutil

        import app

        for info in sorted(pkgutil.iter_modules(app.__path__), key=lambda m: m.name):
            if info.name.startswith("cmd_"):
                importlib.import_module(f"app.{info.name}").register(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._register()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._register()
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """The safety net: whatever a command did not foresee ends as one line, not a
        traceback (the specific causes are fixed where they arise)."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if isinstance(exc, BrokenPipeError) and stdout_closed():
                quiet_closed_stdout()  # not a bug: the reader went away (`| head -1`)
            if ctx.params.get("debug") or os.environ.get("VIPSTUDIO_DEBUG"):
                raise
            detail = " ".join(str(exc).split()) or "no details"
            raise CliError(
                f"unexpected {type(exc).__name__}: {detail[:300]} (a bug in ViP Studio: please "
                "report it; run with --debug or VIPSTUDIO_DEBUG=1 for the traceback)"
            ) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """click's parsing (``vipstudio --help`` prints here, before :meth:`invoke`)."""
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:
            if stdout_closed():
                quiet_closed_stdout()
            raise


def quiet_closed_stdout() -> NoReturn:
    """The reader of stdout has gone: send what is left to /dev/null (so the final flush
    does not fail again) and exit :data:`EXIT_PIPE`, saying nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise click.exceptions.Exit(EXIT_PIPE)


def stdout_closed() -> bool:
    """Whether stdout is a pipe or socket whose reader has gone (so a BrokenPipeError came
    from our output, not from a connection the command opened)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # click's runner, a closed stream
        return False
    if not hasattr(select, "poll"):  # Windows: no poll; a broken pipe there is stdout's
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="vip-studio")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the full traceback of an unexpected error (also VIPSTUDIO_DEBUG=1).",
)
def main(debug: bool) -> None:
    """ViP Studio: draw visual prompts on images, ask ViP-LLaVA about regions, build datasets."""


def all_commands() -> dict[str, click.Command]:
    """Every top-level command, registered (for tests and documentation)."""
    assert isinstance(main, _LazyGroup)
    main._register()
    return dict(main.commands)


def write_line(text: str) -> None:
    click.echo(text, err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = [
    "EXIT_PIPE",
    "CliError",
    "Path",
    "all_commands",
    "main",
    "quiet_closed_stdout",
    "reported",
    "stdout_closed",
    "write_line",
]
