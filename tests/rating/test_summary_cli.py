"""`evalkit study create|invite|export|summarize` end to end on simulated votes with a known answer."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from evalkit.rating import db
from evalkit.rating.session import next_trial, record_answers, sign_in
from evalkit.rating.summary import summarize
from tests.rating.conftest import make_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def study_cli(argv):
    from evalkit.cli import main

    return main(["study", *argv])


def _vote_like(conn, rater: str, p_prefer_alpha: dict[str, float], attentive: bool, rng: random.Random):
    """A simulated rater: prefers run 0 with a per-category probability; controls answered right if attentive."""
    sign_in(conn, rater)
    questions = db.read_config(conn)["questions"]
    while (view := next_trial(conn, rater)) is not None:
        trial = conn.execute("SELECT * FROM trials WHERE trial_id = ?", (view.trial_id,)).fetchone()
        left = conn.execute("SELECT left_side FROM assignments WHERE rater_id = ? AND trial_id = ?",
                            (rater, view.trial_id)).fetchone()[0]
        expected = json.loads(trial["expected"])
        answers = {}
        for question in questions:
            if trial["kind"] == "control" and question in expected:
                want = expected[question] if attentive else ("B" if expected[question] == "A" else "A")
            else:
                want = "A" if rng.random() < p_prefer_alpha[trial["category"]] else "B"
            answers[question] = "left" if want == left else "right"
        record_answers(conn, rater, view.trial_id, answers)


@pytest.fixture
def voted_study(tmp_path):
    runs = [make_run(tmp_path, "run-alpha", prompts=10), make_run(tmp_path, "run-beta", prompts=10)]
    path = tmp_path / "study.sqlite"
    assert study_cli(["create", "--runs", *map(str, runs), "--db", str(path), "--questions", "quality,alignment",
                      "--set-size", "4", "--control-fraction", "0.2"]) == 0
    conn = db.connect(path)
    rng = random.Random(5)
    for number in range(8):
        _vote_like(conn, f"good{number}", {"Colors": 0.9, "Counting": 0.3}, True, rng)
    for number in range(2):
        _vote_like(conn, f"spam{number}", {"Colors": 0.0, "Counting": 0.0}, False, rng)
    conn.close()
    return path


def test_summary_excludes_failed_raters_and_matches_direct_counts(voted_study):
    conn = db.connect(voted_study)
    summary = summarize(conn, n_boot=200)
    assert summary["raters"] == {"total": 10, "kept": 8, "excluded": 2, "unchecked": 0, "threshold": 0.8,
                                 "excluded_ids": ["spam0", "spam1"]}
    frame = pd.read_sql_query(
        "SELECT v.choice, t.category, v.question FROM votes v JOIN trials t USING (trial_id)"
        " WHERE t.kind = 'real' AND v.rater_id LIKE 'good%'", conn)
    [comparison] = [c for c in summary["comparisons"] if c["question"] == "quality"]
    assert (comparison["model_a"], comparison["model_b"]) == ("run-alpha", "run-beta")
    rows = {r["category"]: r for r in comparison["categories"]}
    for category in ("Colors", "Counting"):
        part = frame[(frame["category"] == category) & (frame["question"] == "quality")]
        assert rows[category]["votes"] == len(part) == 5 * 8
        direct = part["choice"].map({"A": 1, "tie": 0.5, "B": 0}).mean()
        rate = rows[category]["pref_a_ties_half"]
        assert rate["value"] == pytest.approx(direct, abs=1e-6)
        assert rate["low"] <= rate["value"] <= rate["high"]
        assert rate["method"] == "bootstrap-prompts-raters" and rate["n"] == len(part)
    assert rows["Colors"]["pref_a_ties_half"]["low"] > 0.5 > rows["Counting"]["pref_a_ties_half"]["high"]
    assert rows["all"]["votes"] == 80
    assert summary["bradley_terry"] == {}  # two models: the pairwise table says it all
    assert summary["agreement"]["quality"]["units_with_2plus_votes"] == 10  # every real trial


def test_summarize_cli_table_json_and_plot(voted_study, tmp_path, capsys):
    plot = tmp_path / "fig3.png"
    assert study_cli(["summarize", "--db", str(voted_study), "--plot", str(plot), "--bootstrap", "100"]) == 0
    text = capsys.readouterr().out
    assert "A = run-alpha  vs  B = run-beta" in text and "Colors" in text and "2 excluded" in text
    assert plot.read_bytes().startswith(PNG_MAGIC) and plot.stat().st_size > 10_000
    assert study_cli(["summarize", "--db", str(voted_study), "--json", "--bootstrap", "100"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {c["question"] for c in summary["comparisons"]} == {"quality", "alignment"}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export(voted_study, tmp_path, suffix):
    out = tmp_path / f"votes.{suffix}"
    assert study_cli(["export", "--db", str(voted_study), "--out", str(out)]) == 0
    frame = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
    conn = db.connect(voted_study)
    assert len(frame) == conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    assert frame.duplicated(["rater_id", "trial_id", "question"]).sum() == 0
    controls = frame[frame["trial_kind"] == "control"].dropna(subset=["expected"])
    assert controls.groupby(controls["rater_id"].str[:4])["correct"].mean().to_dict() == {"good": 1.0, "spam": 0.0}


def test_three_models_get_bradley_terry(tmp_path):
    runs = [make_run(tmp_path, name, prompts=6) for name in ("r-one", "r-two", "r-three")]
    path = tmp_path / "three.sqlite"
    assert study_cli(["create", "--runs", *map(str, runs), "--db", str(path), "--questions", "quality",
                      "--control-fraction", "0"]) == 0
    conn = db.connect(path)
    strength = {0: 2.0, 1: 0.0, 2: -2.0}
    rng = random.Random(0)
    for number in range(6):
        rater = sign_in(conn, f"rater{number}")
        while (view := next_trial(conn, rater)) is not None:
            trial = conn.execute("SELECT model_a, model_b FROM trials WHERE trial_id = ?", (view.trial_id,)).fetchone()
            left = conn.execute("SELECT left_side FROM assignments WHERE rater_id = ? AND trial_id = ?",
                                (rater, view.trial_id)).fetchone()[0]
            p = 1 / (1 + pow(2.718281828, -(strength[trial[0]] - strength[trial[1]])))
            want = "A" if rng.random() < p else "B"
            record_answers(conn, rater, view.trial_id, {"quality": "left" if want == left else "right"})
    summary = summarize(conn, n_boot=100)
    ranking = [row["model"] for row in summary["bradley_terry"]["quality"]]
    assert ranking == ["r-one", "r-two", "r-three"]
    assert len(summary["comparisons"]) == 3


def test_cli_errors_are_one_line(tmp_path, capsys):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", content_hash="other")
    assert study_cli(["create", "--runs", str(a), str(b), "--db", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different benchmarks" in err
    assert study_cli(["create", "--runs", str(a), str(a), "--db", str(tmp_path / "s.sqlite"),
                      "--questions", "beauty"]) == 2
    assert "--questions" in capsys.readouterr().err
    assert study_cli(["summarize", "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert study_cli(["export", "--db", str(tmp_path / "missing.sqlite"), "--out", "x.csv"]) == 2


def test_invite_cli_prints_tokens_that_sign_in(tmp_path, capsys):
    runs = [make_run(tmp_path, "a"), make_run(tmp_path, "b")]
    path = tmp_path / "s.sqlite"
    study_cli(["create", "--runs", *map(str, runs), "--db", str(path), "--invite-only"])
    capsys.readouterr()
    assert study_cli(["invite", "--db", str(path), "--count", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    conn = db.connect(path)
    for line in lines:
        rater_id, token = line.split("\t")
        assert sign_in(conn, token) == rater_id
    assert conn.execute("SELECT COUNT(*) FROM raters WHERE token_hash LIKE 'inv-%'").fetchone()[0] == 0


def test_summary_of_a_study_without_votes(tmp_path, capsys):
    runs = [make_run(tmp_path, "a"), make_run(tmp_path, "b")]
    path = tmp_path / "s.sqlite"
    study_cli(["create", "--runs", *map(str, runs), "--db", str(path)])
    capsys.readouterr()
    assert study_cli(["summarize", "--db", str(path)]) == 0
    assert "no votes yet" in capsys.readouterr().out
    assert study_cli(["summarize", "--db", str(path), "--plot", str(tmp_path / "x.png")]) == 2
    assert "no votes to plot" in capsys.readouterr().err
