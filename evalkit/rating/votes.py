"""Votes as a table (pandas), for export, the admin page and aggregation; and control-trial pass rates."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd

from evalkit import atomic
from evalkit.errors import EvalkitError

COLUMNS = [
    "vote_id", "rater_id", "trial_id", "trial_kind", "control_kind", "prompt_index", "category", "question",
    "model_a", "model_b", "left_side", "choice", "expected", "correct", "created_at",
]


def votes_frame(conn: sqlite3.Connection) -> pd.DataFrame:
    """One row per vote; model_a/model_b are run ids; ``correct`` is set for control questions with an answer."""
    rows = conn.execute(
        "SELECT v.vote_id, v.rater_id, v.trial_id, t.kind AS trial_kind, t.control_kind, t.prompt_index, t.category,"
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


def export_votes(conn: sqlite3.Connection, out: str | Path) -> int:
    """Write all votes to CSV or parquet (by suffix), atomically. Returns the number of rows."""
    out = Path(out)
    frame = votes_frame(conn)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        atomic.write_text(out, frame.to_csv(index=False))
    elif suffix == ".parquet":
        frame = frame.assign(correct=frame["correct"].astype("boolean"))
        atomic.write_bytes(out, frame.to_parquet(index=False))
    else:
        raise EvalkitError(f"--out must end in .csv or .parquet, got {out.name}")
    return len(frame)
