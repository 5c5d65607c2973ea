"""`evalkit report` refuses bad input with one line and exit 2, and writes nothing then: a missing run, a
directory that is not a run, an unscored run, a metrics.json copied from another run, an --out that is a file,
an image that is not readable."""

from __future__ import annotations

import shutil

import pytest

from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.reports.loading import load_runs
from tests.reports.report_runs import toy_runs  # noqa: F401 (fixture)


def _fails(capsys, args, expected: str) -> None:
    capsys.readouterr()
    assert main(["report", *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: ") and expected in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_missing_run(tmp_path, capsys, toy_runs):
    out = tmp_path / "out"
    _fails(capsys, [str(toy_runs.truth), str(tmp_path / "nope"), "--out", str(out)], "does not exist")
    assert not out.exists()


def test_not_a_run(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    _fails(capsys, [str(tmp_path / "plain"), "--out", str(tmp_path / "out")], "is not an evalkit run")


def test_unscored_run(tmp_path, capsys, toy_runs):
    out = tmp_path / "out"
    _fails(capsys, [str(toy_runs.unscored), "--out", str(out)], "has no metrics.json: score it first")
    assert not out.exists()
    # the library can still show an unscored run's images and provenance when asked to
    loaded = load_runs([toy_runs.unscored], allow_unscored=True)
    assert loaded[0].metrics is None and loaded[0].generation["n_images"] == 16


def test_metrics_of_another_run(tmp_path, capsys, toy_runs):
    copy = tmp_path / "copy"
    shutil.copytree(toy_runs.unscored, copy)
    shutil.copy(toy_runs.truth / "metrics.json", copy / "metrics.json")
    _fails(capsys, [str(copy), "--out", str(tmp_path / "out")], f"belongs to run {toy_runs.truth.name}")


def test_invalid_metrics_file(tmp_path, capsys, toy_runs):
    copy = tmp_path / "copy"
    shutil.copytree(toy_runs.truth, copy)
    (copy / "metrics.json").write_text("{not json")
    _fails(capsys, [str(copy), "--out", str(tmp_path / "out")], "is not valid JSON")


def test_out_is_a_file_and_same_run_twice(tmp_path, capsys, toy_runs):
    (tmp_path / "file").write_text("x")
    _fails(capsys, [str(toy_runs.truth), "--out", str(tmp_path / "file")], "is not a directory")
    _fails(capsys, [str(toy_runs.truth), str(toy_runs.truth), "--out", str(tmp_path / "o")], "is given twice")


def test_bad_counts_are_usage_errors(tmp_path, capsys, toy_runs):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(toy_runs.truth), "--out", str(tmp_path / "o"), "--samples", "0"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(EvalkitError, match="at least one run"):
        load_runs([])


def test_unreadable_image_is_one_line(tmp_path, capsys, toy_runs):
    copy = tmp_path / "copy"
    shutil.copytree(toy_runs.truth, copy)
    first = sorted((copy / "images").glob("*.png"))[0]
    first.write_bytes(b"not a png")
    out = tmp_path / "out"
    _fails(capsys, [str(copy), "--out", str(out)], f"{first} is not a readable image")
    assert not (out / "report.html").exists()
