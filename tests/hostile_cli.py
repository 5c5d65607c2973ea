"""The real CLI on hostile input files: a refusal is exit 2 and exactly one stderr line, naming the file.

``cli`` runs ``evalkit.cli.main`` in this process and returns what a user would see on stderr: the lines evalkit
prints (``evalkit: ...``; progress bars are not counted) plus one ``evalkit: warning:`` line per Python warning
raised during the call, recorded with a plain interpreter's filters (pytest's own would hide them), and with
the filters ``evalkit.images`` installs on import (pytest resets filters between tests).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

from evalkit.cli import main
from evalkit.images import install_decoder_warning_filters


def cli(capsys, argv: list) -> tuple[int, list[str], str]:
    """(exit code, the user-visible stderr lines, stdout) of one command."""
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        install_decoder_warning_filters()
        code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("evalkit:")]
    lines += [f"evalkit: warning: {w.message}" for w in seen]
    return code, lines, captured.out


def assert_refused(capsys, argv: list, path: str | Path, *fragments: str) -> str:
    """Exit 2 with one stderr line, naming ``path`` and containing each fragment; returns the line."""
    code, lines, _ = cli(capsys, argv)
    assert code == 2 and len(lines) == 1, (code, lines)
    line = lines[0]
    assert line.startswith("evalkit: error: ") and str(path) in line, line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def json_value(capsys, argv: list, metric: str) -> float:
    """Exit 0 and the finite overall value of ``metric`` from ``--json`` output."""
    code, lines, out = cli(capsys, [*argv, "--json"])
    assert code == 0, lines
    value = json.loads(out)["metrics"][metric]["overall"]["value"]
    assert math.isfinite(value), value
    return value
