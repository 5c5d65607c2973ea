"""The human-study section: a study made with the rating modules (create_study, sign_in, next_trial,
record_answers), its numbers taken from summarize() unchanged, the database only read, bad files one-line errors."""

from __future__ import annotations

import hashlib
import io
import json
import random
import sqlite3

import pytest
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.rating.build import create_study
from evalkit.rating.session import next_trial, record_answers, sign_in
from evalkit.rating.summary import summarize
from evalkit.reports.document import Figure, KeyValues, Paragraph, Table
from evalkit.reports.study_section import percent, study_section
from tests.rating.conftest import make_run

N_BOOT = 60


def _vote(path, rater: str, prefer_first: dict[str, float], attentive: bool, rng: random.Random) -> None:
    """A simulated rater: ties now and then, else prefers A with a per-category probability; controls
    answered right when attentive."""
    conn = db.connect(path)
    try:
        sign_in(conn, rater)
        questions = db.read_config(conn)["questions"]
        while (view := next_trial(conn, rater)) is not None:
            trial = conn.execute("SELECT kind, category, expected FROM trials WHERE trial_id = ?",
                                 (view.trial_id,)).fetchone()
            left = conn.execute("SELECT left_side FROM assignments WHERE rater_id = ? AND trial_id = ?",
                                (rater, view.trial_id)).fetchone()[0]
            expected = json.loads(trial["expected"])
            answers = {}
            for question in questions:
                if trial["kind"] == "control" and question in expected:
                    want = expected[question] if attentive else ("B" if expected[question] == "A" else "A")
                else:
                    # one vote in ten a tie, else A with the category's probability
                    first = rng.random() < prefer_first[trial["category"]]
                    want = "tie" if rng.random() < 0.1 else ("A" if first else "B")
                answers[question] = "tie" if want == "tie" else ("left" if want == left else "right")
            record_answers(conn, rater, view.trial_id, answers)
    finally:
        conn.close()


def _study(tmp_path, names, questions=("quality", "alignment"), raters=5, spammers=1, control=0.2):
    runs = [make_run(tmp_path, name, prompts=6, colour=(40 * i, 90, 200)) for i, name in enumerate(names)]
    path = tmp_path / "study.sqlite"
    create_study(path, runs, list(questions), set_size=2, control_fraction=control, seed=3)
    rng = random.Random(1)
    for number in range(raters):
        _vote(path, f"good{number}", {"Colors": 0.8, "Counting": 0.3}, True, rng)
    for number in range(spammers):
        _vote(path, f"spam{number}", {"Colors": 0.0, "Counting": 0.0}, False, rng)
    return path


@pytest.fixture
def two_model_study(tmp_path):
    return _study(tmp_path, ["run-<b>alpha", "run-beta"])


def _summary(path):
    conn = db.connect(path)
    try:
        return summarize(conn, n_boot=N_BOOT, seed=4)
    finally:
        conn.close()


def _blocks(section, kind):
    return [b for b in section.blocks if isinstance(b, kind)]


def test_numbers_are_summarize_s(two_model_study):
    section = study_section(two_model_study, n_boot=N_BOOT, seed=4)
    summary = _summary(two_model_study)
    assert section.data == summary and section.anchor == "human-study"
    tables = _blocks(section, Table)
    voted = [c for c in summary["comparisons"] if c["categories"]]
    assert len(voted) == 2 and len(tables) == len(voted) + 1  # one per question and pair, then agreement
    for table, comparison in zip(tables, voted):
        assert [row[0] for row in table.rows] == ["Colors", "Counting", "all"]
        for row, expected in zip(table.rows, comparison["categories"]):
            assert row[1:] == (percent(expected["pref_a_ties_half"]), percent(expected["pref_a_ties_excluded"]),
                               str(expected["votes"]), str(expected["prompts"]), str(expected["raters"]),
                               str(expected["ties"]))
    first = voted[0]["categories"][0]["pref_a_ties_half"]
    assert tables[0].rows[0][1] == (f"{100 * first['value']:.1f}% [{100 * first['low']:.1f}, "
                                    f"{100 * first['high']:.1f}]")
    agreement = tables[-1]
    assert [row[0] for row in agreement.rows] == ["quality", "alignment"]
    assert agreement.rows[0][2] == str(summary["agreement"]["quality"]["units_with_2plus_votes"])
    assert not any("Bradley-Terry" in t.caption for t in tables)  # two models: the pairwise table says it all


def test_raters_excluded_and_figure(two_model_study):
    section = study_section(two_model_study, n_boot=N_BOOT)
    [raters] = _blocks(section, KeyValues)
    items = dict(raters.items)
    assert items["raters"] == "6" and items["kept"] == "5"
    assert items["excluded"] == "1 (control pass rate below 80%)" and items["excluded raters"] == "spam0"
    [figure] = _blocks(section, Figure)
    image = Image.open(io.BytesIO(figure.png))
    image.load()
    assert image.format == "PNG" and image.width > 400 and figure.name == "study-preference.png"
    assert study_section(two_model_study, n_boot=N_BOOT).blocks[1].png == figure.png  # same input, same bytes


def test_model_names_stay_plain_text(two_model_study):
    section = study_section(two_model_study, n_boot=N_BOOT)
    texts = [b.text for b in _blocks(section, Paragraph)] + [t.caption for t in _blocks(section, Table)]
    assert any("A = run-<b>alpha, B = run-beta" in text for text in texts)
    assert "run-<b>alpha" in texts[0]
    cells = [c for t in _blocks(section, Table) for row in t.rows for c in row] + texts
    assert not any("&lt;" in c or "&amp;" in c or "**" in c for c in cells)


def test_three_models_get_bradley_terry(tmp_path):
    path = _study(tmp_path, ["r-one", "r-two", "r-three"], questions=("quality",), raters=3, spammers=0, control=0)
    section = study_section(path, n_boot=N_BOOT, seed=4)
    summary = _summary(path)
    [bt] = [t for t in _blocks(section, Table) if "Bradley-Terry" in t.caption]
    assert [row[0] for row in bt.rows] == [r["model"] for r in summary["bradley_terry"]["quality"]]
    top = summary["bradley_terry"]["quality"][0]
    assert bt.rows[0][1:] == (f"{top['score']:+.3f} [{top['ci_low']:+.3f}, {top['ci_high']:+.3f}]",
                              f"{top['elo']:.0f}")
    assert len([t for t in _blocks(section, Table) if t.caption.startswith("quality: A =")]) == 3


def test_study_without_votes(tmp_path):
    runs = [make_run(tmp_path, "a"), make_run(tmp_path, "b")]
    path = tmp_path / "empty.sqlite"
    create_study(path, runs, ["quality"], set_size=2)
    section = study_section(path, n_boot=N_BOOT)
    assert not _blocks(section, Figure)
    assert [p.text for p in _blocks(section, Paragraph) if p.kind == "note"] == ["No votes on real trials yet."]


def test_the_database_is_only_read(two_model_study):
    before = hashlib.sha256(two_model_study.read_bytes()).hexdigest()
    study_section(two_model_study, n_boot=N_BOOT)
    assert hashlib.sha256(two_model_study.read_bytes()).hexdigest() == before


def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_bad_files_are_one_line_errors(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("this is a text file, not a database\n" * 40)
    with pytest.raises(EvalkitError) as error:
        study_section(text)
    assert "is not an evalkit study database" in _one_line(error)

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE measurements (x REAL)")
    with pytest.raises(EvalkitError) as error:
        study_section(other)
    assert "no study tables" in _one_line(error)

    with pytest.raises(EvalkitError) as error:
        study_section(tmp_path / "missing.sqlite")
    assert "does not exist" in _one_line(error)


def test_a_study_of_another_schema_is_refused(tmp_path, two_model_study):
    older = tmp_path / "older.sqlite"
    with sqlite3.connect(older) as conn:  # the current schema, minus the recorded screen side of each vote
        conn.executescript(db.SCHEMA.replace("    left_side TEXT NOT NULL CHECK (left_side IN ('A', 'B')),\n"
                                             "    created_at", "    created_at"))
    assert "left_side" not in {r[1] for r in sqlite3.connect(older).execute("PRAGMA table_info(votes)")}
    with pytest.raises(EvalkitError) as error:
        study_section(older)
    assert "another evalkit version (no column votes.left_side)" in _one_line(error)

    no_config = tmp_path / "no-config.sqlite"
    with sqlite3.connect(no_config) as conn:
        conn.executescript(db.SCHEMA)
    with pytest.raises(EvalkitError) as error:
        study_section(no_config)
    assert "has no study in it" in _one_line(error)
