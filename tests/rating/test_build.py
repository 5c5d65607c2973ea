"""Creating a study from runs: prompt matching, benchmark checks, control trials with known answers."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.rating.build import create_study
from evalkit.rating.images import image_bytes
from tests.rating.conftest import make_run


def test_trials_are_prompt_times_model_pair(tmp_path):
    runs = [make_run(tmp_path, name, prompts=5, samples=3) for name in ("r1", "r2", "r3")]
    config = create_study(tmp_path / "s.sqlite", runs, ["quality"], set_size=2, control_fraction=0)
    conn = db.connect(tmp_path / "s.sqlite")
    pairs = conn.execute("SELECT model_a, model_b, COUNT(*) FROM trials GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    assert [tuple(p) for p in pairs] == [(0, 1, 5), (0, 2, 5), (1, 2, 5)]
    assert config["real_trials"] == 15 and config["control_trials"] == 0
    sizes = conn.execute("SELECT COUNT(*) FROM trial_images GROUP BY trial_id, side").fetchall()
    assert {s[0] for s in sizes} == {2}
    # side A of each trial shows model_a's own images for that very prompt
    row = conn.execute(
        "SELECT i.path, m.run_id, t.prompt_index FROM trials t JOIN trial_images ti ON ti.trial_id = t.trial_id"
        " JOIN images i ON i.image_id = ti.image_id JOIN models m ON m.model_id = i.model_id"
        " WHERE ti.side = 'A' AND t.model_a = 1 AND ti.position = 1 LIMIT 1").fetchone()
    assert row["run_id"] == "r2" and row["path"] == f"images/{row['prompt_index']:05d}_01.png"


def test_prompts_matched_by_index_and_incomplete_prompts_skipped(tmp_path):
    full = make_run(tmp_path, "full", prompts=6)
    partial = make_run(tmp_path, "partial", prompts=6)
    (partial / "images" / "00002_03.png").unlink()  # prompt 2 lacks its 4th image in one run
    config = create_study(tmp_path / "s.sqlite", [full, partial], ["quality"], set_size=4, control_fraction=0)
    conn = db.connect(tmp_path / "s.sqlite")
    indices = [r[0] for r in conn.execute("SELECT prompt_index FROM trials ORDER BY 1")]
    assert indices == [0, 1, 3, 4, 5] and config["prompts"] == 5


@pytest.mark.parametrize("field,value,message", [
    ("benchmark", "otherbench", "different benchmarks"), ("content_hash", "hash-2", "different benchmarks"),
])
def test_runs_on_different_benchmarks_are_refused(tmp_path, field, value, message):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", **{field: value})
    with pytest.raises(EvalkitError, match=message):
        create_study(tmp_path / "s.sqlite", [a, b], ["quality"])


def test_bad_inputs_are_refused(tmp_path):
    a, b = make_run(tmp_path, "a", samples=2), make_run(tmp_path, "b", samples=2)
    with pytest.raises(EvalkitError, match="at least two runs"):
        create_study(tmp_path / "s.sqlite", [a], ["quality"])
    with pytest.raises(EvalkitError, match="listed twice"):
        create_study(tmp_path / "s.sqlite", [a, a], ["quality"])
    with pytest.raises(EvalkitError, match="no prompt has 4"):
        create_study(tmp_path / "s.sqlite", [a, b], ["quality"], set_size=4)
    with pytest.raises(EvalkitError, match="does not exist"):
        create_study(tmp_path / "s.sqlite", [a, tmp_path / "nope"], ["quality"])
    create_study(tmp_path / "s.sqlite", [a, b], ["quality"], set_size=2)
    with pytest.raises(EvalkitError, match="already exists"):
        create_study(tmp_path / "s.sqlite", [a, b], ["quality"], set_size=2)
    config = create_study(tmp_path / "s.sqlite", [a, b], ["alignment"], set_size=1, replace=True)
    assert db.read_config(db.connect(tmp_path / "s.sqlite"))["questions"] == config["questions"] == ["alignment"]


def test_control_trials_have_known_answers(tmp_path):
    runs = [make_run(tmp_path, "a", prompts=8), make_run(tmp_path, "b", prompts=8)]
    config = create_study(tmp_path / "s.sqlite", runs, ["quality", "alignment"], control_fraction=0.5, seed=3)
    assert config["control_trials"] == config["real_trials"] == 8
    conn = db.connect(tmp_path / "s.sqlite")
    kinds = set()
    for trial in conn.execute("SELECT * FROM trials WHERE kind = 'control'").fetchall():
        expected = json.loads(trial["expected"])
        kinds.add(trial["control_kind"])
        good = next(iter(expected.values()))
        bad = "B" if good == "A" else "A"
        side_rows = {side: conn.execute(
            "SELECT i.path, i.png, m.run_id FROM trial_images ti JOIN images i ON i.image_id = ti.image_id"
            " LEFT JOIN models m ON m.model_id = i.model_id WHERE ti.trial_id = ? AND ti.side = ?",
            (trial["trial_id"], side)).fetchall() for side in "AB"}
        assert all(r["path"] == f"images/{trial['prompt_index']:05d}_{i:02d}.png"
                   for i, r in enumerate(side_rows[good]))
        if trial["control_kind"] == "noise":
            assert expected == {"quality": good, "alignment": good}
            assert all(r["png"] is not None for r in side_rows[bad])
        else:
            assert expected == {"alignment": good}  # quality has no right answer between two real sets
            wrong = {int(r["path"][7:12]) for r in side_rows[bad]}
            assert len(wrong) == 1 and trial["prompt_index"] not in wrong
            assert {r["run_id"] for r in side_rows[bad]} == {r["run_id"] for r in side_rows[good]}
    assert kinds == {"noise", "other-prompt"}


def test_noise_images_are_served_from_the_database(tmp_path):
    runs = [make_run(tmp_path, "a"), make_run(tmp_path, "b")]
    create_study(tmp_path / "s.sqlite", runs, ["quality"], control_fraction=0.5)
    conn = db.connect(tmp_path / "s.sqlite")
    ids = [r[0] for r in conn.execute("SELECT image_id FROM images WHERE png IS NOT NULL")]
    assert ids and len({image_bytes(conn, i) for i in ids}) == len(ids)  # distinct noise
