"""The human study in the report: evalkit.rating.summary.summarize's numbers as blocks, never recomputed.

The study database is opened read-only (SQLite URI ``mode=ro``): a report never writes to a study that raters may be
voting in. It must hold every table and column of this evalkit's schema (evalkit/rating/db.py) and a study config;
a file that is not SQLite, a SQLite file without the study tables, or a study made by an evalkit with another
layout is a one-line ``EvalkitError``.

Blocks: the per-category preference chart (Imagen, Fig. 3: % preferring A with ties as half, 95% intervals by the
bootstrap over prompts and raters), one table per question and model pair (preference with ties as half and with
ties excluded, votes, prompts, raters, ties), Bradley-Terry scores for three or more models, Krippendorff's alpha
per question, and the raters excluded by the control trials. ``data`` is the summary itself.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.rating.plot import summary_png
from evalkit.rating.summary import summarize
from evalkit.reports.document import Figure, KeyValues, Paragraph, Section, Table

CONFIG_FIELDS = ("study_id", "benchmark", "runs", "questions")  # what summarize reads from the config
DPI = 110


def _expected_columns() -> dict[str, set[str]]:
    """Every table of this evalkit's study schema and its columns, read from db.SCHEMA itself."""
    memory = sqlite3.connect(":memory:")
    try:
        memory.executescript(db.SCHEMA)
        tables = [r[0] for r in memory.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: {r[1] for r in memory.execute(f"PRAGMA table_info({t})")} for t in tables}
    finally:
        memory.close()


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"meta", "votes"} <= found:
        raise EvalkitError(f"{path} is not an evalkit study database (it has no study tables)")
    for table, columns in _expected_columns().items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")} if table in found else set()
        missing = sorted(columns - have)
        if missing:
            what = f"table {table}" if not have else f"column {table}.{missing[0]}"
            raise EvalkitError(f"{path} is a study database of another evalkit version (no {what}); "
                               "summarize it with the evalkit that made it")


def _check_config(conn: sqlite3.Connection, path: Path) -> None:
    try:
        config = db.read_config(conn)
    except EvalkitError:
        raise EvalkitError(f"{path} has no study in it (create it with `evalkit study create`)") from None
    except ValueError:
        raise EvalkitError(f"{path}: the study config is not valid JSON") from None
    missing = [f for f in CONFIG_FIELDS if f not in config] if isinstance(config, dict) else list(CONFIG_FIELDS)
    if missing:
        raise EvalkitError(f"{path} is a study database of another evalkit version (its config lacks "
                           f"{', '.join(missing)})")


def open_study(path: Path) -> sqlite3.Connection:
    """The study database, read-only, checked against this evalkit's schema."""
    path = Path(path)
    if not path.is_file():
        raise EvalkitError(f"study database {path} does not exist")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=db.BUSY_TIMEOUT_S)
    except sqlite3.Error as error:
        raise EvalkitError(f"cannot open study database {path}: {error}") from None
    conn.row_factory = sqlite3.Row  # what db.read_config and votes_frame read rows as
    try:
        db.check_study_file(conn, path)  # schema version, tables, quick_check: the checks every opener makes
        _check_schema(conn, path)
        _check_config(conn, path)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise EvalkitError(f"{path} is not an evalkit study database ({error})") from None
    except EvalkitError:
        conn.close()
        raise
    return conn


def percent(rate: dict[str, Any]) -> str:
    """A rate as ``Estimate.to_json`` writes it, in percent with its 95% interval."""
    if rate["value"] is None:
        return "-"
    if rate["low"] is None:
        return f"{100 * rate['value']:.1f}%"
    return f"{100 * rate['value']:.1f}% [{100 * rate['low']:.1f}, {100 * rate['high']:.1f}]"


def comparison_table(comparison: dict[str, Any]) -> Table:
    """One question and model pair: a row per category and one for all prompts."""
    rows = tuple((row["category"], percent(row["pref_a_ties_half"]), percent(row["pref_a_ties_excluded"]),
                  str(row["votes"]), str(row["prompts"]), str(row["raters"]), str(row["ties"]))
                 for row in comparison["categories"])
    return Table(("category", "prefer A, ties = 1/2 [95% CI]", "prefer A, ties excluded [95% CI]", "votes",
                  "prompts", "raters", "ties"), rows,
                 caption=f"{comparison['question']}: A = {comparison['model_a']}, B = {comparison['model_b']}; "
                         "intervals by bootstrap over prompts and raters")


def bradley_terry_table(question: str, rows: list[dict[str, Any]]) -> Table:
    return Table(("model", "log-strength [95% CI]", "elo"),
                 tuple((r["model"], f"{r['score']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]", f"{r['elo']:.0f}")
                       for r in rows),
                 caption=f"{question}: Bradley-Terry scores (centred; elo = 1000 + 400 log10-odds), best first")


def agreement_table(agreement: dict[str, Any]) -> Table:
    rows = tuple((question, "-" if a["krippendorff_alpha"] is None else f"{a['krippendorff_alpha']:.3f}",
                  str(a["units_with_2plus_votes"])) for question, a in agreement.items())
    return Table(("question", "Krippendorff's alpha", "trials with 2+ votes"), rows,
                 caption="inter-rater agreement (nominal alpha: 1 perfect, 0 chance level; '-' when undefined)")


def raters_block(raters: dict[str, Any]) -> KeyValues:
    items = [("raters", str(raters["total"])), ("kept", str(raters["kept"])),
             ("excluded", f"{raters['excluded']} (control pass rate below {raters['threshold']:.0%})"),
             ("without graded controls (kept)", str(raters["unchecked"]))]
    if raters.get("excluded_ids"):
        items.append(("excluded raters", ", ".join(raters["excluded_ids"])))
    return KeyValues(tuple(items), caption="raters screened by the control trials")


def _overview(summary: dict[str, Any], n_boot: int, seed: int) -> Paragraph:
    study, votes = summary["study"], summary["votes"]
    bench = study.get("benchmark") or {}
    return Paragraph(f"Study {study['study_id']} on {bench.get('name')}: {len(study['runs'])} models "
                     f"({', '.join(study['runs'])}), questions {', '.join(study['questions'])}; "
                     f"{votes['total']} votes, {votes['control']} on control trials, {votes['analysed']} analysed "
                     f"(intervals from {n_boot} bootstrap resamples, seed {seed}).")


def _figure(summary: dict[str, Any]) -> Figure:
    return Figure(summary_png(summary, dpi=DPI), name="study-preference.png",
                  caption="% of votes preferring A per category (ties = 1/2), 95% intervals over prompts and raters; "
                          "the dashed line is no preference",
                  alt="Horizontal bar chart of the preference for model A per category and question")


def study_blocks(summary: dict[str, Any], n_boot: int, seed: int) -> list:
    blocks: list = [_overview(summary, n_boot, seed)]
    voted = [c for c in summary["comparisons"] if c["categories"]]
    if voted:
        blocks.append(_figure(summary))
    else:
        blocks.append(Paragraph("No votes on real trials yet.", "note"))
    blocks += [comparison_table(c) for c in voted]
    blocks += [bradley_terry_table(q, rows) for q, rows in summary["bradley_terry"].items()]
    if summary["agreement"]:
        blocks.append(agreement_table(summary["agreement"]))
    blocks.append(raters_block(summary["raters"]))
    return blocks


def study_section(study_path: Path, n_boot: int = 1000, seed: int = 0) -> Section:
    """The human-study section of the report from a study database (see the module docstring)."""
    conn = open_study(Path(study_path))
    try:
        summary = summarize(conn, n_boot=n_boot, seed=seed)
    finally:
        conn.close()
    return Section("Human study", "human-study", tuple(study_blocks(summary, n_boot, seed)), data=summary)
