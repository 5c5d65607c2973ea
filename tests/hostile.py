"""Running `evalkit` in-process on hostile input and classifying how it ended.

A hostile case "ends cleanly" when the command either succeeds (exit 0, a documented safe conversion) or exits 2
with exactly one line on stderr: never an uncaught exception (a traceback), never another exit code.
``evalkit_cli(argv)`` runs ``evalkit.cli.main`` and returns what happened instead of raising, so a test can assert
on it and a census can count it.
"""

from __future__ import annotations

import contextlib
import io
import re
import traceback
from dataclasses import dataclass

ERROR_LINE = re.compile(r"evalkit( [\w-]+)*: error: ")  # ours, or argparse's "evalkit run: error: ..."


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: an uncaught exception escaped main()
    stdout: str
    stderr: str
    exception: str = ""  # the traceback, when one escaped

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if ERROR_LINE.match(line)]

    @property
    def clean(self) -> bool:
        """Exit 0, or exit 2 with one 'evalkit[ COMMAND]: error:' line last; warnings may precede it, a traceback
        never."""
        if self.code is None or "Traceback" in self.stderr:
            return False
        if self.code == 0:
            return True
        return self.code == 2 and len(self.error_lines) == 1 and self.stderr.rstrip().endswith(
            self.error_lines[0].rstrip())

    @property
    def clean_error(self) -> bool:
        return self.code == 2 and self.clean

    def describe(self) -> str:
        return f"exit {self.code}\nstderr: {self.stderr[-2000:]}\n{self.exception[-3000:]}"


def evalkit_cli(argv: list[str]) -> Outcome:
    """``evalkit ARGV`` in this process; argparse's exits and every escaping exception are captured."""
    from evalkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | None
    trace = ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except Exception:  # a bug: what the user would see as a traceback
            code, trace = None, traceback.format_exc()
    return Outcome(code, out.getvalue(), err.getvalue(), trace)
