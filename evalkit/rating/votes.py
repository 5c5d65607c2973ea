"""Votes as a table (pandas), for export, the admin page and aggregation; and control-trial pass rates.

CSV exports are made safe to open in a spreadsheet: a text cell starting with ``= + - @``, a tab or a carriage
return would be run as a formula by Excel, LibreOffice or Google Sheets (CSV injection), so it gets a leading
``'`` (OWASP's advice), which spreadsheets show as text. Prompts, categories, run ids and rater ids all come from
outside. Parquet exports keep every value exactly as stored: they are for code, which must not be handed altered
data, and spreadsheets do not execute parquet.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pandas as pd

from evalkit import atomic
from evalkit.errors import EvalkitError

COLUMNS = [
    "vote_id", "rater_id", "trial_id", "trial_kind", "control_kind", "prompt_index", "prompt", "category", "question",
    "model_a", "model_b", "left_side", "choice", "expected", "correct", "created_at",
]


def votes_frame(conn: sqlite3.Connection) -> pd.DataFrame:
    """One row per vote; model_a/model_b are run ids; ``correct`` is set for control questions with an answer."""
    rows = conn.execute(
        "SELECT v.vote_id, v.rater_id, v.trial_id, t.kind AS trial_kind, t.control_kind, t.prompt_index, t.prompt,"
        " t.category,"
        " v.question, ma.run_id AS model_a, mb.run_id AS model_b, v.left_side, v.choice, t.expected, v.created_at"
        " FROM votes v JOIN trials t ON t.trial_id = v.trial_id"
        " LEFT JOIN models ma ON ma.model_id = t.model_a LEFT JOIN models mb ON mb.model_id = t.model_b"
        " ORDER BY v.vote_id"
    ).fetchall()
    frame = pd.DataFrame([dict(row) for row in rows], columns=[c for c in COLUMNS if c != "correct"])
    expected = [json.loads(text or "{}").get(question) for text, question in zip(frame["expected"], frame["question"])]
    frame["expected"] = pd.Series(expected, index=frame.index, dtype=object)
    frame["correct"] = pd.Series(
        [None if e is None else bool(e == c) for e, c in zip(expected, frame["choice"])], index=frame.index, dtype=object
    )
    return frame[COLUMNS]


def control_pass_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per rater: control questions answered, passed, and the pass rate (NaN for raters who saw no control)."""
    raters = pd.Index(sorted(frame["rater_id"].unique()), name="rater_id")
    graded = frame[frame["correct"].notna()]
    answered = graded.groupby("rater_id").size().reindex(raters, fill_value=0)
    passed = graded[graded["correct"].astype(bool)].groupby("rater_id").size().reindex(raters, fill_value=0)
    out = pd.DataFrame({"controls": answered, "passed": passed})
    out["pass_rate"] = out["passed"] / out["controls"].where(out["controls"] > 0)
    return out.reset_index()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell a spreadsheet would evaluate, prefixed with ``'``; anything else unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def votes_csv(frame: pd.DataFrame) -> str:
    """The votes table as CSV text, every text cell quoted and made spreadsheet-safe (numbers keep their sign)."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):  # text, object or pandas' string dtype
            safe[column] = safe[column].map(spreadsheet_safe)
    # every text cell quoted: pandas leaves a bare carriage return unquoted, which readers take for a line break
    return safe.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)


def export_votes(conn: sqlite3.Connection, out: str | Path) -> int:
    """Write all votes to CSV (spreadsheet-safe) or parquet (raw values), by suffix, atomically. Returns the
    number of rows."""
    out = Path(out)
    frame = votes_frame(conn)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        atomic.write_text(out, votes_csv(frame))
    elif suffix == ".parquet":
        frame = frame.assign(correct=frame["correct"].astype("boolean"))
        atomic.write_bytes(out, frame.to_parquet(index=False))
    else:
        raise EvalkitError(f"--out must end in .csv or .parquet, got {out.name}")
    return len(frame)
