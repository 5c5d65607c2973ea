"""`evalkit report` end to end on small real runs (evalkit run + evalkit score): report.html is self-contained
(every image a data: URI that decodes, nothing referencing the network), holds the metric table with the best
value marked, the key table, per-category tables and charts, and grids whose thumbnails open full size;
report.md has its tables and the files it links; report.json holds metrics.json's numbers exactly."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from evalkit.cli import main
from evalkit.runs.store import open_run
from tests.reports.report_html import parse_page
from tests.reports.report_runs import toy_runs  # noqa: F401 (fixture)

URL = re.compile(r"(https?:|ftp:|file:)?//", re.IGNORECASE)


@pytest.fixture(scope="module")
def report_dir(toy_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    runs = [str(toy_runs.truth), str(toy_runs.shuffled), str(toy_runs.escaped)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["report", *runs, "--out", str(out), "--title", "Report test"]) == 0
    printed = stdout.getvalue().split()
    assert printed == [str(out / "report.html"), str(out / "report.md"), str(out / "report.json")]
    return out


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["metrics"]


def _labels(report_dir: Path) -> dict[str, str]:
    """{run directory name: its label in the report}, from report.json's data.runs."""
    runs = json.loads((report_dir / "report.json").read_text())["data"]["runs"]
    return {Path(r["path"]).name: r["label"] for r in runs}


def _decode(src: str) -> Image.Image:
    match = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", src)
    assert match, src[:60]
    image = Image.open(io.BytesIO(base64.b64decode(match.group(2), validate=True)))
    image.load()
    assert image.format == match.group(1).upper()
    return image


def test_html_is_self_contained(report_dir):
    page = parse_page((report_dir / "report.html").read_text(encoding="utf-8"))
    images = page.find("img")
    assert len(images) > 20
    for img in images:
        _decode(img.attrs["src"])
    for element in page.elements:
        assert element.tag not in ("script", "link", "iframe", "object", "embed", "base", "source")
        for name, value in element.attrs.items():
            if name == "src":
                assert value.startswith("data:image/")
            else:
                assert not URL.search(value), (element.tag, name, value)
            if name == "href":
                assert value.startswith("#")
    assert not URL.search(page.find("style")[0].text)
    assert "@import" not in page.find("style")[0].text and "url(" not in page.find("style")[0].text


def test_html_metric_table_marks_the_best_run(report_dir, toy_runs):
    page = parse_page((report_dir / "report.html").read_text(encoding="utf-8"))
    classes = [cls for cls, _ in page.tables]
    assert classes.count("data") >= 1 + 1 + 7  # metric table, key table, one per toy-world stat's categories
    names = _labels(report_dir)
    header, *rows = next(rows for cls, rows in page.tables if cls == "data" and rows[0][0][1] == "stat")
    labels = [text for _, text, _ in header]
    assert labels[:2] == ["stat", "better"] and names[toy_runs.truth.name] in labels
    truth, shuffled = labels.index(names[toy_runs.truth.name]), labels.index(names[toy_runs.shuffled.name])
    by_stat = {row[0][1]: row for row in rows}
    for stat, scored in _metrics(toy_runs.truth).items():
        row = by_stat[stat]
        assert row[1][1] == "\u2191 higher"
        value = scored["overall"]["value"]
        assert row[truth][1].startswith(f"{value:.4f} [") and row[truth][1].endswith(f"n={scored['overall']['n']}")
        other = _metrics(toy_runs.shuffled)[stat]["overall"]["value"]
        # the same benchmark, N and options: comparable, so the higher accuracy is bold (both when tied)
        assert row[truth][2] is (value >= other) and row[shuffled][2] is (other >= value)
    assert "kid" not in by_stat  # the prompt-file run has its own benchmark's table
    file_table = next(rows for cls, rows in page.tables
                      if cls == "data" and rows[0][0][1] == "stat" and rows[0][-1][1] == names[toy_runs.escaped.name])
    kid = {row[0][1]: row for row in file_table[1:]}["kid"]
    assert kid[1][1] == "\u2193 lower" and not any(bold for _, _, bold in kid)  # one number: no best
    assert "toyworld.all" in (report_dir / "report.html").read_text() and "pixels" in page.find("main")[0].text


def test_html_categories_charts_and_grids(report_dir, toy_runs):
    page = parse_page((report_dir / "report.html").read_text(encoding="utf-8"))
    charts = page.find("figure", "chart")
    assert len(charts) == 7 + 1  # one per toy-world stat, and KID per category of the prompt file
    ids = page.ids()
    assert {"metrics-toyworld", "categories-toyworld", "grids-toyworld", "efficiency", "provenance"} <= ids
    links = [a.attrs["href"][1:] for a in page.find("a") if a.attrs.get("href", "").startswith("#")]
    assert links and all(target in ids for target in links)  # contents, thumbnails and close links all land
    grids = [rows for cls, rows in page.tables if cls == "grid"]
    categories = {r.category for r in open_run(toy_runs.truth).records()}
    assert len(grids) == len(categories) + 2  # the toy-world categories, and the prompt file's two
    names = _labels(report_dir)
    truth, shuffled = names[toy_runs.truth.name], names[toy_runs.shuffled.name]
    assert [text for _, text, _ in grids[0][0]] == ["prompt", "sample 0", "sample 1"]  # each sample over the runs
    assert [text for _, text, _ in grids[0][1]] == [truth, shuffled, truth, shuffled]
    overlays = page.find("div", "overlay")
    thumbs = [a for a in page.find("a") if a.attrs.get("href", "").startswith("#img-")]
    assert len(overlays) == len({a.attrs["href"] for a in thumbs}) > 0
    full = _decode(next(e for e in page.elements if e.tag == "img" and "thumb" not in e.classes
                        and f"\u2014 {truth} \u00b7 prompt" in e.attrs.get("alt", "")).attrs["src"])
    assert full.size == (64, 64)  # embedded at full size
    warnings = [p.text for p in page.find("p", "warning")]
    assert any("Seeds differ between the runs" in w for w in warnings)  # the shuffled run has run seed 1


def test_markdown_tables_and_linked_files(report_dir, toy_runs):
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    for stat in _metrics(toy_runs.truth):
        assert re.search(rf"^\| {re.escape(stat)} \| \u2191 higher \| \*\*", text, re.MULTILINE), stat
    links = re.findall(r"\]\(((?:figures|images)/[^)]+)\)", text)
    figures = [link for link in links if link.startswith("figures/")]
    assert len(figures) == 7 + 1 and len([link for link in links if link.startswith("images/")]) > 20
    for link in links:
        path = report_dir / link
        assert path.is_file() and path.resolve().is_relative_to(report_dir.resolve())
        Image.open(path).verify()
    for line in text.splitlines():
        if line.startswith("| toyworld.all |"):
            assert line.count("|") == 4 + 1  # stat, better and the two toy-world runs
    assert sorted(p.name for p in report_dir.iterdir()) == ["figures", "images", "report.html", "report.json",
                                                            "report.md"]


def test_json_holds_the_numbers_exactly(report_dir, toy_runs):
    report = json.loads((report_dir / "report.json").read_text())
    assert report["evalkit_report"] == 1 and report["title"] == "Report test"
    assert [r["path"] for r in report["data"]["runs"]] == [str(toy_runs.truth), str(toy_runs.shuffled),
                                                           str(toy_runs.escaped)]
    assert [r["run_id"] for r in report["data"]["runs"]] == [toy_runs.truth.name, toy_runs.shuffled.name,
                                                             toy_runs.escaped.name]  # run ids are the folder names
    names = _labels(report_dir)
    sections = {s["anchor"]: s for s in report["sections"]}
    assert [r["label"] for r in sections["runs"]["data"]["runs"]] == list(names.values())
    for run in (toy_runs.truth, toy_runs.shuffled):
        scored = _metrics(run)
        table = sections["metrics-toyworld"]["data"]["stats"]
        for stat, body in scored.items():
            assert table[stat][names[run.name]]["overall"] == body["overall"]
            assert table[stat][names[run.name]]["key"] == body["key"]
        children = {c["anchor"]: c["data"] for c in sections["categories-toyworld"]["children"]}
        for stat, body in scored.items():
            assert children[f"categories-toyworld-{stat.replace('.', '-')}-category"]["values"][names[run.name]] == \
                body["groups"]["category"]
    kid = _metrics(toy_runs.escaped)["kid"]
    assert sections["metrics-file"]["data"]["stats"]["kid"][names[toy_runs.escaped.name]]["overall"] == kid["overall"]
    efficiency = sections["efficiency"]["data"][names[toy_runs.truth.name]]
    assert efficiency == json.loads((toy_runs.truth / "metrics.json").read_text())["generation"]
    assert sections["provenance"]["children"][0]["data"]["manifest"]["run_id"] == toy_runs.truth.name
    text = (report_dir / "report.json").read_text()
    assert text == json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"  # sorted keys


def test_study_section_is_included(toy_runs, tmp_path, capsys):
    from evalkit.rating.build import create_study

    study = tmp_path / "study.sqlite"
    create_study(study, [toy_runs.truth, toy_runs.shuffled], ["quality"], set_size=2, control_fraction=0)
    out = tmp_path / "out"
    assert main(["report", str(toy_runs.truth), str(toy_runs.shuffled), "--study", str(study), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    anchors = [s["anchor"] for s in report["sections"]]
    assert "human-study" in anchors and anchors.index("human-study") < anchors.index("grids-toyworld")
    assert report["data"]["study"] == str(study)
    assert 'id="human-study"' in (out / "report.html").read_text()
    capsys.readouterr()
    assert main(["report", str(toy_runs.truth), "--study", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 2
    assert "study database" in capsys.readouterr().err
