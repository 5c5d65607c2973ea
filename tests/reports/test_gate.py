"""`evalkit check`: the three exit codes, every comparability-key field refused, the tolerance rules in both
directions, --update-baseline round trips, and a Markdown summary whose user text stays text."""

from __future__ import annotations

import json
import re

import pytest

from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.reports.baseline import read_baseline
from evalkit.reports.gate import ERROR, IMPROVEMENT, PASS, REGRESSION, check_run, update_baseline
from evalkit.reports.noise import PAIRED, TWO_PROPORTION, UNPAIRED
from tests.reports.conftest import write_run
from tests.reports.simulate import document, mean_stat


@pytest.fixture
def baseline(tmp_path, make_run):
    path = tmp_path / "baseline.json"
    assert main(["check", str(make_run("base")), "--baseline", str(path), "--update-baseline"]) == 0
    return path


def set_tolerances(path, tolerances):
    data = json.loads(path.read_text())
    data["tolerances"] = tolerances
    path.write_text(json.dumps(data))


def test_exit_codes(baseline, make_run, tmp_path, capsys):
    capsys.readouterr()
    # 0: the same model, new seeds (the paired bootstrap sees only image noise)
    assert main(["check", str(make_run("again")), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "passed" in out and "within noise" in out and "clip ^" in out
    # 1: CLIP score 1.5 lower, ~7 standard errors of the paired change
    assert main(["check", str(make_run("worse", clip_shift=-1.5)), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "outside noise" in out
    # 2: a gated stat missing
    drop = make_run("partial", edit=lambda d: d["metrics"].pop("toyworld.all"))
    assert main(["check", str(drop), "--baseline", str(baseline)]) == 2
    assert "toyworld.all: missing from the run's metrics.json" in capsys.readouterr().out
    # 2: unreadable / invalid inputs, one line each
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{not json")
    cases = {str(tmp_path / "broken"): "is not valid JSON", str(tmp_path / "nowhere"): "does not exist",
             str(tmp_path): "has no metrics.json"}
    for run, message in cases.items():
        assert main(["check", run, "--baseline", str(baseline)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert main(["check", str(make_run("x")), "--baseline", str(tmp_path / "none.json")]) == 2
    assert "--update-baseline" in capsys.readouterr().err


def test_invalid_documents_are_refused_with_the_field(make_run, baseline, tmp_path):
    run = make_run("bad", edit=lambda d: d["metrics"]["clip"]["overall"].update(method="guess"), valid=False)
    with pytest.raises(EvalkitError, match=r"metrics\.clip\.overall\.method"):
        check_run(run, baseline)
    run = make_run("old", edit=lambda d: d.update(schema_version=0), valid=False)
    with pytest.raises(EvalkitError, match="schema version 0"):
        check_run(run, baseline)
    set_tolerances(baseline, {"clip": {"max_increase": -1}})
    with pytest.raises(EvalkitError, match=r"tolerances\.clip\.max_increase must be >= 0"):
        check_run(make_run("y"), baseline)
    set_tolerances(baseline, {"clip": {"max_increase": 1, "noise": True}})
    with pytest.raises(EvalkitError, match="a tolerance is one of"):
        check_run(make_run("y"), baseline)
    set_tolerances(baseline, {"clip": {"noise": {"alpha": 0.7}}})
    with pytest.raises(EvalkitError, match=r"alpha must be in \(0, 0\.5\)"):
        check_run(make_run("y"), baseline)


KEY_CHANGES = [
    ("benchmark.content_hash", "sha256:" + "00" * 32),
    ("benchmark.name", "parti"),
    ("n_images", 199),
    ("images_per_prompt", 4),
    ("extractor.name", "clip-cmmd"),
    ("extractor.weights_sha256", "ef" * 32),
    ("extractor.preprocessing.resize", "clean"),
    ("extractor.preprocessing.crop", 256),  # a setting only one side records
    ("reference", {"id": "coco", "kind": "stats", "hash": "sha256:" + "11" * 32, "n": 30000}),
    ("options.model", "ViT-L-14"),
]


def _set(mapping, dotted, value):
    *parents, leaf = dotted.split(".")
    for part in parents:
        mapping = mapping[part]
    mapping[leaf] = value


@pytest.mark.parametrize("field,value", KEY_CHANGES, ids=[f for f, _ in KEY_CHANGES])
def test_each_key_field_makes_runs_incomparable(field, value, make_run, baseline, capsys):
    run = make_run("other", edit=lambda d: _set(d["metrics"]["clip"]["key"], field, value))
    result = check_run(run, baseline)
    clip = next(c for c in result.checks if c.stat == "clip")
    assert result.exit_code == 2 and clip.verdict == ERROR
    assert clip.message.startswith("incomparable: ") and f"{field} differs" in clip.message
    capsys.readouterr()
    assert main(["check", str(run), "--baseline", str(baseline)]) == 2
    assert f"{field} differs" in capsys.readouterr().out


def test_value_neutral_fields_compare_with_a_note(make_run, baseline):
    def edit(doc):
        key = doc["metrics"]["clip"]["key"]
        key["options"]["per_image"] = True  # stores per-image scores, does not change the mean
        key["evalkit_version"] = "9.9.9"
    result = check_run(make_run("newer", edit=edit), baseline)
    assert result.exit_code == 0
    assert any("evalkit_version differs" in note and "9.9.9" in note for note in result.notes)


def test_metric_and_direction_must_match(make_run, baseline):
    result = check_run(make_run("flip", edit=lambda d: d["metrics"]["clip"].update(higher_is_better=False)), baseline)
    assert result.exit_code == 2 and "direction" in result.checks[0].message


def test_fixed_tolerances_in_both_directions(make_run, baseline):
    base = read_baseline(baseline).stats["clip"].overall.value
    set_tolerances(baseline, {"clip": {"max_increase": 1.0}, "toyworld.all": {"max_rel_increase": 0.1}})
    assert check_run(make_run("a", clip_shift=-0.6), baseline).exit_code == 0
    worse = check_run(make_run("b", clip_shift=-1.6), baseline)
    assert worse.exit_code == 1 and worse.regressions[0].stat == "clip" and "> allowed 1.0000" in worse.regressions[0].message
    assert check_run(make_run("c", clip_shift=+5), baseline).exit_code == 0  # higher CLIP score is better
    # toy-world accuracy 0.75: a 10% relative drop (0.075) is allowed, 0.0775 is not
    assert check_run(make_run("d", accuracy=(270, 400)), baseline).exit_code == 0
    assert check_run(make_run("e", accuracy=(269, 400)), baseline).exit_code == 1
    assert base > 20


def test_noise_rule_methods_and_verdicts(make_run, baseline, model):
    result = check_run(make_run("better", clip_shift=+1.5, accuracy=(360, 400)), baseline)
    by = {c.stat: c for c in result.checks}
    assert by["clip"].verdict == IMPROVEMENT and by["clip"].noise_method == PAIRED
    assert by["toyworld.all"].verdict == IMPROVEMENT and by["toyworld.all"].noise_method == TWO_PROPORTION
    assert check_run(make_run("acc", accuracy=(240, 400)), baseline).exit_code == 1  # 0.75 -> 0.60, z ~ 4.6
    # bootstrap seed differs: no pairing, the unpaired rule (said so), which misses a shift the paired one finds
    other_seed = lambda d: d["metrics"].update(clip=mean_stat(model.scores(-0.5), model.keys, seed=5))
    unpaired = check_run(make_run("seed5", edit=other_seed), baseline).checks[0]
    assert unpaired.noise_method == UNPAIRED and "seed differs" in unpaired.message and unpaired.verdict == PASS
    assert check_run(make_run("paired", clip_shift=-0.5), baseline).checks[0].verdict == REGRESSION
    # min_effect: a real but small drop passes
    set_tolerances(baseline, {"*": {"noise": {"alpha": 0.05, "min_effect": 2.0}}})
    assert check_run(make_run("small", clip_shift=-1.5), baseline).exit_code == 0


def test_noise_rule_without_any_interval_is_an_error(make_run, tmp_path):
    def no_interval(doc):
        clip = doc["metrics"]["clip"]
        clip["overall"].update(low=None, high=None, method="none")
        clip["details"] = {}
    path = tmp_path / "b.json"
    update_baseline(make_run("p", edit=no_interval), path)
    result = check_run(make_run("q", edit=no_interval), path)
    assert result.exit_code == 2 and "--opt clip.bootstrap=200" in result.checks[0].message


def test_update_baseline_round_trip_keeps_tolerances(tmp_path, make_run, baseline):
    written = read_baseline(baseline)
    run = json.loads((tmp_path / "base" / "metrics.json").read_text())["metrics"]["clip"]
    clip = written.stats["clip"]
    assert list(clip.bootstrap.replicates) == run["details"]["bootstrap"]["replicates"]
    assert clip.overall.to_json() == run["overall"] and clip.key == run["key"]
    assert written.source["run_id"] == "base" and set(written.stats) == {"clip", "toyworld.all"}
    set_tolerances(baseline, {"clip": {"max_increase": 0.25}, "*": {"noise": {"alpha": 0.01, "min_effect": 0}}})
    newer = make_run("newer", clip_shift=-3)
    assert main(["check", str(newer), "--baseline", str(baseline), "--update-baseline"]) == 0
    again = read_baseline(baseline)
    assert again.tolerance_for("clip").limit == 0.25 and again.tolerance_for("toyworld.all").alpha == 0.01
    assert again.source["run_id"] == "newer" and again.stats["clip"].overall.value < clip.overall.value - 2
    assert check_run(newer, baseline).exit_code == 0  # the new baseline is the run itself
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    # --metrics narrows the gated set; a stat the run lacks is an error, and nothing is written
    assert main(["check", str(newer), "--baseline", str(baseline), "--update-baseline", "--metrics", "clip"]) == 0
    assert set(read_baseline(baseline).stats) == {"clip"}
    before = baseline.read_text()
    assert main(["check", str(newer), "--baseline", str(baseline), "--update-baseline", "--metrics", "fid"]) == 2
    assert baseline.read_text() == before
    # an existing file that is not a baseline is not overwritten
    (tmp_path / "notes.json").write_text("[1, 2]")
    with pytest.raises(EvalkitError, match="not an evalkit baseline"):
        update_baseline(newer, tmp_path / "notes.json")


def _cells(row: str) -> list[str]:
    assert row.startswith("| ") and row.endswith(" |")
    return row[2:-2].split(" | ")


def test_summary_markdown_escapes_user_text(tmp_path, model):
    name = "clip|<script>alert(1)</script>`x`*y*"
    stat = mean_stat(model.scores(), model.keys)
    base = write_run(tmp_path, "b", document({name: stat}, run_id="run|<b>`id`"))
    path = tmp_path / "baseline.json"
    update_baseline(base, path)
    summary = tmp_path / "out" / "summary.md"
    worse = write_run(tmp_path, "w", document({name: mean_stat(model.scores(-2), model.keys)}, run_id="run|<b>`id`"))
    assert main(["check", str(worse), "--baseline", str(path), "--summary-md", str(summary)]) == 1
    text = summary.read_text()
    assert "<script>" not in text and "<b>" not in text and "`" not in text
    assert "&lt;script&gt;" in text and "&#124;" in text and "&#96;x&#96;" in text and "\\*y\\*" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 3 and rows[1] == "|---|---|---|---|---|---|" and len(_cells(rows[2])) == 6
    assert _cells(rows[0]) == ["metric", "baseline", "new", "delta", "tolerance", "verdict"]
    cells = _cells(rows[2])
    assert cells[-1] == "**REGRESSION**" and cells[0].endswith("(higher is better)")
    assert re.fullmatch(r"-\d+\.\d{4}", cells[3]) and text.startswith("### evalkit check: REGRESSION")


def test_summary_is_written_for_errors_too(tmp_path, make_run):
    summary = tmp_path / "summary.md"
    assert main(["check", str(make_run("r")), "--baseline", str(tmp_path / "missing.json"),
                 "--summary-md", str(summary)]) == 2
    assert summary.read_text().startswith("### evalkit check: ERROR") and "does not exist" in summary.read_text()


def test_json_output(baseline, make_run, capsys):
    capsys.readouterr()
    assert main(["check", str(make_run("j", clip_shift=-1.5)), "--baseline", str(baseline), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["outcome"] == "regression" and data["exit_code"] == 1
    clip = next(c for c in data["checks"] if c["stat"] == "clip")
    assert clip["noise"]["method"] == PAIRED and clip["noise"]["change_high"] < 0 < -clip["delta"]


def test_a_broken_baseline_file_is_one_line(make_run, baseline, capsys):
    data = json.loads(baseline.read_text())
    data["stats"]["clip"]["bootstrap"]["replicates"].pop()
    baseline.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["check", str(make_run("z")), "--baseline", str(baseline)]) == 2
    err = capsys.readouterr().err
    assert "199 bootstrap replicates, but resamples says 200" in err and err.count("\n") == 1


def test_a_tolerance_for_no_gated_stat_is_noted(make_run, baseline):
    set_tolerances(baseline, {"cilp": {"max_increase": 1.0}})
    result = check_run(make_run("t"), baseline)
    assert result.exit_code == 0 and any("'cilp' matches no gated stat" in note for note in result.notes)
