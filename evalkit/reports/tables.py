"""Numbers as text, aligned terminal tables and Markdown a pull-request comment can hold.

Markdown cells are data, never markup: ``md_escape`` turns every character that GitHub / GitLab Markdown or the
HTML they allow would interpret (``|`` ``<`` ``>`` ``&`` backticks ``*`` ``_`` ``[`` ``]`` ``\\`` ``#`` ``~``, line
breaks) into a literal, so a prompt, a stat name from a plug-in or a path shows as typed.
"""

from __future__ import annotations

from typing import Sequence

from evalkit.estimate import Estimate

# Entities where a backslash is not honoured everywhere (inside table cells, HTML), backslash escapes elsewhere.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "`": "&#96;", "|": "&#124;"}
_BACKSLASHED = set("\\*_[]#~!")


def md_escape(text: object) -> str:
    out = []
    for char in str(text):
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _BACKSLASHED:
            out.append("\\" + char)
        elif char in "\r\n\t":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], escape: bool = True) -> list[str]:
    """A GitHub-flavoured Markdown table (cells escaped unless the caller escaped them already)."""
    cell = md_escape if escape else str
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart (for the terminal)."""
    table = [list(header)] + [list(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_number(value: float | None, scale: float | None = None) -> str:
    """Four decimals, or scientific notation when the quantity itself is tiny (KID ~ 1e-3): one style per row,
    set by ``scale`` (the row's value)."""
    if value is None:
        return "n/a"
    scale = value if scale is None else scale
    return f"{value:.3e}" if scale != 0 and abs(scale) < 0.01 else f"{value:.4f}"


def format_signed(value: float | None, scale: float | None = None) -> str:
    if value is None:
        return "n/a"
    text = format_number(value, scale)
    return text if text.startswith("-") else "+" + text


def format_estimate(est: Estimate | None) -> str:
    """``value [low, high]`` (no brackets without an interval)."""
    if est is None:
        return "-"
    if est.value is None:
        return "n/a (n=0)"
    interval = f" [{format_number(est.low, est.value)}, {format_number(est.high, est.value)}]" if est.has_interval else ""
    return f"{format_number(est.value)}{interval}"
