"""A gate result as text: an aligned terminal table, and a Markdown summary fit for a pull-request comment
(`evalkit check --summary-md FILE`; every cell and message escaped, see evalkit.reports.tables)."""

from __future__ import annotations

from evalkit.reports.gate import ERROR, IMPROVEMENT, REGRESSION, CheckResult, StatCheck
from evalkit.reports.tables import aligned, format_estimate, format_signed, md_escape, md_table

HEADER = ("metric", "baseline", "new", "delta", "tolerance", "verdict")
_OUTCOME = {"passed": "passed: every gated metric is within tolerance",
            "regression": "REGRESSION: a gated metric is worse than its tolerance allows",
            "error": "ERROR: the run could not be checked against the baseline"}


def _direction(check: StatCheck) -> str:
    if check.higher_is_better is None:
        return ""
    return "higher is better" if check.higher_is_better else "lower is better"


def _cells(check: StatCheck) -> list[str]:
    scale = check.baseline.value if check.baseline is not None else None
    return [check.stat, format_estimate(check.baseline), format_estimate(check.new),
            format_signed(check.delta, scale), check.tolerance.describe(), check.verdict]


def check_lines(result: CheckResult) -> list[str]:
    """The terminal report: outcome, the table, one line of reasoning per metric, notes."""
    arrows = {True: " ^", False: " v", None: ""}
    rows = []
    for check in result.checks:
        cells = _cells(check)
        cells[0] += arrows[check.higher_is_better]
        cells[-1] = cells[-1].upper() if check.verdict in (REGRESSION, ERROR) else cells[-1]
        rows.append(cells)
    lines = [f"evalkit check: {result.run} against {result.baseline}: {_OUTCOME[result.outcome]}", ""]
    lines += aligned(HEADER, rows) + [""]
    lines += [f"{check.stat}: {check.message}" for check in result.checks]
    lines += [f"note: {note}" for note in result.notes]
    if result.untracked:
        lines.append(f"not gated (not in the baseline): {', '.join(result.untracked)}")
    return lines


def _md_verdict(check: StatCheck) -> str:
    text = md_escape(check.verdict)
    return f"**{text.upper()}**" if check.verdict in (REGRESSION, ERROR) else (
        f"_{text}_" if check.verdict == IMPROVEMENT else text)


def check_markdown(result: CheckResult) -> str:
    """The Markdown summary: heading with the outcome, the table, reasoning per metric, notes."""
    rows = []
    for check in result.checks:
        cells = [md_escape(c) for c in _cells(check)]
        direction = _direction(check)
        cells[0] += f" ({direction})" if direction else ""
        cells[-1] = _md_verdict(check)
        rows.append(cells)
    lines = [f"### evalkit check: {md_escape(_OUTCOME[result.outcome])}", "",
             f"Run {md_escape(result.run)} against baseline {md_escape(result.baseline)}.", ""]
    lines += md_table(HEADER, rows, escape=False) + [""]
    lines += [f"- {md_escape(check.stat)}: {md_escape(check.message)}" for check in result.checks]
    lines += [f"- note: {md_escape(note)}" for note in result.notes]
    if result.untracked:
        lines.append(f"- not gated (not in the baseline): {md_escape(', '.join(result.untracked))}")
    return "\n".join(lines) + "\n"


def error_markdown(message: str) -> str:
    """The summary when nothing could be compared (an unreadable or invalid file): the one-line error."""
    return f"### evalkit check: {md_escape(_OUTCOME['error'])}\n\n{md_escape(message)}\n"
