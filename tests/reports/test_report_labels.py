"""Run labels: derived from what tells the runs apart (a sweep of three, a default with three one-setting changes,
runs of different adapters, runs alike), stable under reordering; `--label RUN=TEXT` overrides them, shows as
text (escaped) in report.html and report.md, and report.json maps every label to its run id; a four-run report
keeps its tables and grids in scroll containers, with compact cells."""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import re

import pytest
from PIL import Image

from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.reports.grids import thumbnail_size
from evalkit.reports.html_style import CSS
from evalkit.reports.report import build_report, write_report
from evalkit.reports.run_labels import derive_labels, differences, label_runs, short_names
from tests.reports.report_html import parse_page
from tests.reports.report_runs import toy_runs  # noqa: F401 (fixture)
from tests.reports.test_sweeps import MANIFEST, _set, make_run, reference  # noqa: F401 (fixtures)


def _manifest(run_id: str, settings: dict | None = None, adapter: str | None = None, **top) -> dict:
    manifest = copy.deepcopy(MANIFEST)
    manifest["run_id"] = run_id
    for dotted, value in (settings or {}).items():
        _set(manifest["adapter"]["config"], dotted, value)
    if adapter is not None:
        manifest["adapter"] = {"name": adapter, "config": {"scenes": "ground truth"}, "checkpoint_hash": None}
    manifest.update(top)
    return manifest


def _without_expert(run_id: str) -> dict:
    manifest = _manifest(run_id)
    del manifest["adapter"]["config"]["experts"]
    manifest["adapter"]["checkpoint_hash"] = "b293de2c53258102"  # the weights loaded differ too
    return manifest


def test_a_sweep_of_three_is_labelled_by_its_setting_in_any_order():
    runs = [_manifest(f"toyworld-imagen-{g}0000", {"sampling.base.guidance": float(g)}) for g in (5, 1, 3)]
    # "steps" and "guidance" alone are ambiguous: sampling.sr1 has them too
    assert derive_labels(runs) == ["base.guidance=5", "base.guidance=1", "base.guidance=3"]
    assert derive_labels(runs[::-1]) == ["base.guidance=3", "base.guidance=1", "base.guidance=5"]
    assert differences(runs)[1] == "sampling.base.guidance=1"


def test_a_default_and_three_changes_of_one_setting_each():
    runs = [_manifest("toyworld-imagen-57d50e77d2fe"), _manifest("toyworld-imagen-315b59b36d49",
                                                                 {"sampling.base.steps": 4}),
            _without_expert("toyworld-imagen-6215b94ca9f3"),
            _manifest("toyworld-imagen-8d5efb53f67d", {"sampling.base.guidance": 1.0})]
    labels = derive_labels(runs)
    # a value most runs share is left out of their labels; the run holding all of them is named by them; the
    # checkpoint hash that changed with the experts is left out beside them
    assert labels == ["experts=base_expert, base.guidance=3, base.steps=16", "base.steps=4", "experts: absent",
                      "base.guidance=1"]
    assert sorted(derive_labels(runs[::-1])) == sorted(labels)
    assert differences(runs)[2] == ("checkpoint=b293de2c; experts: absent; sampling.base.guidance=3; "
                                    "sampling.base.steps=16")


def test_runs_of_different_adapters_are_labelled_by_model_first():
    runs = [_manifest("toyworld-imagen-a1", {"sampling.base.guidance": 3.0}),
            _manifest("toyworld-imagen-b2", {"sampling.base.guidance": 1.0}),
            _manifest("toyworld-toyworld-truth-c3", adapter="toyworld-truth")]
    # config fields are compared within an adapter only: imagen's are not "absent" for the truth run
    assert derive_labels(runs) == ["imagen, base.guidance=3", "imagen, base.guidance=1", "toyworld-truth"]
    two = [runs[0], _manifest("toyworld-toyworld-truth-c3", adapter="toyworld-truth", seed=7)]
    assert derive_labels(two) == ["imagen, seed=0", "toyworld-truth, seed=7"]


def test_runs_alike_fall_back_to_run_ids_and_stay_unique():
    assert derive_labels([_manifest("toyworld-imagen-a1")]) == ["toyworld-imagen-a1"]
    alike = [_manifest("toyworld-imagen-a1"), _manifest("toyworld-imagen-b2")]
    assert derive_labels(alike) == ["toyworld-imagen-a1", "toyworld-imagen-b2"]
    assert derive_labels([alike[0], copy.deepcopy(alike[0])]) == ["toyworld-imagen-a1", "toyworld-imagen-a1 (2)"]
    # two runs with one label among others that differ: the run id's last part tells them apart
    runs = [_manifest("toyworld-imagen-aaa"), _manifest("toyworld-imagen-bbb"),
            _manifest("toyworld-imagen-ccc", {"sampling.base.steps": 4})]
    assert derive_labels(runs) == ["base.steps=16 #aaa", "base.steps=16 #bbb", "base.steps=4"]


def test_short_names_are_unambiguous_suffixes():
    fields = ["sampling.base.steps", "sampling.sr1.steps", "experts", "text_encoder.dim", "dim"]
    assert short_names(fields) == {"sampling.base.steps": "base.steps", "sampling.sr1.steps": "sr1.steps",
                                   "experts": "experts", "text_encoder.dim": "text_encoder.dim", "dim": "dim"}


def test_explicit_labels_override_and_must_be_unique(tmp_path):
    runs = [_manifest("toyworld-imagen-a1", {"sampling.base.guidance": 3.0}),
            _manifest("toyworld-imagen-b2", {"sampling.base.guidance": 1.0})]
    given = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert label_runs(runs, given, {"toyworld-imagen-b2": "  low   guidance "}) == ["base.guidance=3", "low guidance"]
    assert label_runs(runs, given, {given[0]: "x"}) == ["x", "base.guidance=1"]
    with pytest.raises(EvalkitError, match="none of the report's runs"):
        label_runs(runs, given, {"elsewhere": "x"})
    with pytest.raises(EvalkitError, match="would label more than one run"):
        label_runs(runs, given, {given[0]: "base.guidance=1"})
    with pytest.raises(EvalkitError, match="must not be empty"):
        label_runs(runs, given, {given[0]: " "})


LABEL = "<b>truth</b> & | $x$ *run*"


@pytest.fixture(scope="module")
def labelled(toy_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("labelled") / "out"
    shuffled_id = json.loads((toy_runs.shuffled / "manifest.json").read_text())["run_id"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", str(toy_runs.truth), str(toy_runs.shuffled), "--out", str(out),
                     "--label", f"{toy_runs.truth}={LABEL}", "--label", f"{shuffled_id}=shuffled=1"]) == 0
    return out


def test_explicit_labels_reach_every_format_as_text(labelled, toy_runs):
    text = (labelled / "report.html").read_text(encoding="utf-8")
    page = parse_page(text)
    assert not page.find("b") and "<b>truth" not in text
    metric = next(rows for cls, rows in page.tables if cls == "data" and rows[0][0][1] == "stat")
    assert [cell for _, cell, _ in metric[0]][2:] == [LABEL, "shuffled=1"]  # split at the first '=' only
    grid = next(rows for cls, rows in page.tables if cls == "grid")
    assert [cell for _, cell, _ in grid[1]] == [LABEL, "shuffled=1", LABEL, "shuffled=1"]
    runs = next(rows for cls, rows in page.tables if cls == "data" and rows[0][0][1] == "label")
    assert [(row[0][1], row[1][1]) for row in runs[1:]] == [(LABEL, toy_runs.truth.name),
                                                            ("shuffled=1", toy_runs.shuffled.name)]
    markdown = (labelled / "report.md").read_text(encoding="utf-8")
    assert "<b>" not in markdown and "&lt;b&gt;truth&lt;/b&gt; &amp; &#124; $x$ \\*run\\*" in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| stat | better |"))
    assert header.count("|") == 5  # the label's own pipe is escaped: still four columns
    report = json.loads((labelled / "report.json").read_text())
    assert [(r["label"], r["run_id"]) for r in report["data"]["runs"]] == [(LABEL, toy_runs.truth.name),
                                                                           ("shuffled=1", toy_runs.shuffled.name)]
    assert set(next(s for s in report["sections"] if s["anchor"] == "efficiency")["data"]) == {LABEL, "shuffled=1"}


@pytest.mark.parametrize("labels, message", [(["nolabel"], "expected RUN=TEXT"), (["=x"], "expected RUN=TEXT"),
                                             (["missing=x"], "none of the report's runs")])
def test_bad_labels_are_one_line_errors(toy_runs, tmp_path, capsys, labels, message):
    args = ["report", str(toy_runs.truth), "--out", str(tmp_path / "out")]
    assert main(args + [a for label in labels for a in ("--label", label)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _size(src: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(src.partition(",")[2]))).size


@pytest.fixture
def four_runs(make_run, tmp_path):
    make_run("toyworld-imagen-57d50e77d2fe")
    make_run("toyworld-imagen-315b59b36d49", {"sampling.base.steps": 4}, clip=(24.0, 23.1, 24.9), fid=22.0)
    make_run("toyworld-imagen-6215b94ca9f3", edit_manifest=lambda m: m["adapter"]["config"].pop("experts"),
             clip=(25.5, 24.6, 26.4), fid=19.0)
    make_run("toyworld-imagen-8d5efb53f67d", {"sampling.base.guidance": 1.0}, clip=(23.0, 22.0, 24.0), fid=25.0)
    runs = [tmp_path / name for name in ("toyworld-imagen-57d50e77d2fe", "toyworld-imagen-315b59b36d49",
                                         "toyworld-imagen-6215b94ca9f3", "toyworld-imagen-8d5efb53f67d")]
    for image in (f for run in runs for f in (run / "images").glob("*.png")):  # the Imagen cascade's 128 px
        Image.open(image).resize((128, 128), Image.NEAREST).save(image)
    return runs


def test_a_four_run_report_scrolls_its_wide_tables(four_runs, tmp_path):
    paths = write_report(build_report(four_runs), tmp_path / "report")
    text = paths["html"].read_text(encoding="utf-8")
    page = parse_page(text)
    labels = ["experts=base_expert, base.guidance=3, base.steps=16", "base.steps=4", "experts: absent",
              "base.guidance=1"]
    metric = next(rows for cls, rows in page.tables if cls == "data" and rows[0][0][1] == "stat")
    assert [cell for _, cell, _ in metric[0]] == ["stat", "better", *labels]
    # every table sits in a container that scrolls sideways, never cut off by the page
    assert text.count("<table") == text.count('<div class="table-wrap"><table') > 5
    assert re.search(r"\.table-wrap \{[^}]*overflow-x: auto", CSS)
    # numbers are compact: the value alone on its line, interval and n beneath in smaller type
    cells = re.findall(r'<td class="num[^"]*">(.*?)</td>', text)
    assert cells and all(re.fullmatch(r'(<strong>)?[-0-9.e]+(</strong>)? <span class="detail">[^<]+</span>', c)
                         for c in cells if "\u2014" not in c)
    # the grid: 4 runs x 2 samples under one "sample" heading each, thumbnails sized to fit 1280 px
    grid = next(rows for cls, rows in page.tables if cls == "grid")
    assert [cell for _, cell, _ in grid[0]] == ["prompt", "sample 0", "sample 1"]
    assert [cell for _, cell, _ in grid[1]] == labels * 2
    assert thumbnail_size(8) * 8 <= 940 and thumbnail_size(4) == 160
    thumbs = [e for e in page.find("img", "thumb")]
    assert thumbs and all(_size(e.attrs["src"]) == (thumbnail_size(8),) * 2 for e in thumbs)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    row = next(line for line in markdown.splitlines() if line.startswith("| clip |"))
    assert row.count("<br>") == 4 and row.count("|") == 7  # value<br>interval in each run's cell, still valid
    sweeps = {s["data"]["field"]: [r["run"] for r in s["data"]["runs"]]
              for s in json.loads(paths["json"].read_text())["sections"] if s["anchor"].startswith("sweep-")}
    assert sweeps["sampling.base.steps"] == ["base.steps=4", labels[0]]  # sweeps name runs by label too
