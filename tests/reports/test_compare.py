"""`evalkit compare RUN_A RUN_B`: an aligned side-by-side table, deltas with paired noise where the runs pair,
"incomparable: <field>" instead of a number where the keys differ, and the same as JSON."""

from __future__ import annotations

import copy
import json

from evalkit.cli import main
from evalkit.reports.compare import compare_runs
from evalkit.reports.noise import PAIRED, TWO_PROPORTION
from tests.reports.conftest import write_run
from tests.reports.simulate import document, mean_stat, wilson_stat


def two_runs(tmp_path, model):
    clip_a, clip_b = mean_stat(model.scores(), model.keys), mean_stat(model.scores(-1.5), model.keys)
    other = copy.deepcopy(clip_a)
    other["key"]["extractor"]["preprocessing"]["resize"] = "bilinear"
    a = document({"clip": clip_a, "toyworld.all": wilson_stat(300, 400), "clip-resized": clip_a,
                  "only-a": clip_a}, run_id="run-a")
    b = document({"clip": clip_b, "toyworld.all": wilson_stat(303, 400), "clip-resized": other}, run_id="run-b")
    return write_run(tmp_path, "a", a), write_run(tmp_path, "b", b)


def test_compare_rows(tmp_path, model):
    a, b = two_runs(tmp_path, model)
    rows = {row.stat: row for row in compare_runs(a, b).rows}
    clip = rows["clip"]
    assert clip.noise_method == PAIRED and clip.outside_noise and clip.status == "worse: outside noise (paired-bootstrap)"
    assert clip.change_low < clip.delta < clip.change_high < 0
    toy = rows["toyworld.all"]
    assert toy.noise_method == TWO_PROPORTION and not toy.outside_noise and abs(toy.delta - 3 / 400) < 1e-12
    assert toy.status == "within noise (two-proportion)"
    assert rows["clip-resized"].delta is None
    assert rows["clip-resized"].status == "incomparable: extractor.preprocessing.resize"
    assert rows["only-a"].status == "only in A" and rows["only-a"].delta is None


def test_compare_cli_table_and_json(tmp_path, model, capsys):
    a, b = two_runs(tmp_path, model)
    assert main(["compare", str(a), str(b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "A = run-a" and lines[1] == "B = run-b"
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    table = lines[header:header + 6]
    column = table[0].index("status")
    assert all(line[column - 2:column] == "  " for line in table[2:]), "columns are aligned"
    assert table[2].startswith("clip ^") and table[2][column:].startswith("worse: outside noise")
    resized = next(line for line in table if line.startswith("clip-resized"))
    assert resized[column:] == "incomparable: extractor.preprocessing.resize"
    assert "[" in table[2][table[0].index("B - A"):column]  # the change's interval
    assert any("resize differs: bicubic (A) vs bilinear (B)" in line for line in lines)

    assert main(["compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["stat"]: row for row in data["rows"]}
    assert rows["clip"]["noise"]["outside"] is True and rows["clip"]["noise"]["method"] == PAIRED
    assert rows["clip-resized"]["delta"] is None and rows["clip-resized"]["incomparable"] == ["extractor.preprocessing.resize"]
    assert rows["clip"]["a"]["value"] > rows["clip"]["b"]["value"]


def test_compare_missing_metrics_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), str(tmp_path / "empty")]) == 2
    assert "has no metrics.json" in capsys.readouterr().err
