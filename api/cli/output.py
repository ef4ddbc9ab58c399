"""Where the ghost-engine CLI's answers go: to a person, or with --json to a program.

For a person: tables, minimaps and progress bars, notes and failures as lines on stderr. With --json
(or GHOST_JSON=1): stdout gets each answer as the API sent it, one compact line of JSON, and stderr
nothing but a failure, as one line ``{"error": {"code": ..., "message": ...}}``. The exit codes are the
same either way.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from api.cli.text import OutputClosed, Terminal, line

# DEL and C1, which json.dumps leaves as they are: escaped too, so that no terminal acts on them.
_DEL_AND_C1 = re.compile(r"[\x7f-\x9f]")


class Output:
    """The CLI's stdout and stderr, and whether they are for a person or (--json) a program."""

    def __init__(self, stdout: Terminal, stderr: Terminal) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json = False  # set by --json before any other option is read, so usage errors follow it

    def show(self, document: Any, human: Callable[[], object] | None = None) -> None:
        """A command's answer: ``document`` (the API's body) with --json, else what ``human()`` prints, if any."""
        if self.json:
            _write_json(self.stdout, document)
        elif human is not None:
            human()

    def note(self, *parts: str | tuple[str, str]) -> None:
        """A line for a person on stderr (what happened, what to run next); nothing with --json."""
        if not self.json:
            self.stderr.print(line(*parts))

    def fail(self, exit_code: int, code: str, message: str, *, said: str = "") -> NoReturn:
        """End with ``exit_code``, saying why: ``said`` + ``message`` as a line, or with --json
        ``{"error": {"code": code, "message": message}}``."""
        if self.json:
            _write_json(self.stderr, {"error": {"code": code, "message": message}})
        else:
            self.stderr.print(line(said + message))
        sys.exit(exit_code)


def json_option(command):
    """--json (or GHOST_JSON=1), set on the Output that main hands in as ctx.obj. Read before any other
    option (is_eager), so that even their usage errors are JSON."""

    def switch(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        ctx.obj.json = value

    return click.option(
        "--json",
        is_flag=True,
        envvar="GHOST_JSON",
        is_eager=True,
        expose_value=False,
        callback=switch,
        help="Print the API's answers as JSON, one line each, and failures as JSON on stderr (GHOST_JSON=1).",
    )(command)


def _write_json(terminal: Terminal, document: Any) -> None:
    # Plain text to the terminal's file, none of rich's markup, wrapping or highlighting.
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    try:
        terminal.file.write(_DEL_AND_C1.sub(lambda found: f"\\u{ord(found[0]):04x}", text) + "\n")
        terminal.file.flush()  # as rich does, so that a reader gone (`| head`) is found here
    except BrokenPipeError:
        raise OutputClosed from None  # which click passes on (it would exit 1 on a BrokenPipeError)


def quiet_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it at exit, which would fail again, with a traceback."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (under a test): nothing to flush into a pipe
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
