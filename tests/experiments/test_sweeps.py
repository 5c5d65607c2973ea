"""Smoke test: the sampling sweeps on a tiny two-stage cascade; every row is a run scored by the toyworld metric."""

import re

from evalkit.experiments import sweeps
from evalkit.experiments.runs import cell
from evalkit.metrics.toyworld import score_toyworld_images
from evalkit.runs.store import list_runs

from .toyworld_helpers import tiny_minilm_checkpoint


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if re.match(r"^\| (guidance|threshold|sampler|SR)", line)]


def test_sweeps_on_a_tiny_cascade(tmp_path):
    checkpoint = tiny_minilm_checkpoint(tmp_path / "ckpt")
    out, figure, runs = tmp_path / "sweeps.md", tmp_path / "pareto.png", tmp_path / "runs"
    argv = ["--checkpoint", str(checkpoint), "--benchmark", "toyworld-validation", "--prompts", "2",
            "--sampler-prompts", "1", "--threads", "1", "--runs", str(runs), "--out", str(out), "--figure", str(figure)]
    assert sweeps.main(argv) == 0
    text = out.read_text()
    command = "python -m evalkit.experiments.sweeps --benchmark toyworld-validation --prompts 2 --sampler-prompts 1"
    assert f"`{command}`" in text
    rows = _rows(text)
    assert [r[1] for r in rows[:6]] == ["w=1", "w=2", "w=4", "w=6", "w=8", "w=10"]
    assert [r[1] for r in rows[6:9]] == ["none", "static", "dynamic"]
    assert [r[1] for r in rows[9:13]] == ["ddpm 250", "ddim 50", "dpm++2m 25", "dpm++2m 16"]
    assert len(rows) == 18 and rows[-1][0] == "SR stages (16 px)"
    assert all(re.fullmatch(r"diversity \d\.\d{3}", r[6]) for r in rows[:6])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    scored = list_runs(runs)
    assert len(scored) == 18  # one run per setting
    sizes = sorted(len(run.completed_records()) for run in scored)
    assert sizes == [1] * 4 + [2] * 8 + [4] * 6  # sampler rows, threshold + SR rows, guidance rows (2 per prompt)
    # the table's cells are the toyworld metric's numbers for the stored images
    for run in scored:
        records = run.completed_records()
        stats = {s.name: s.overall for s in score_toyworld_images(records, [run.image_path(r) for r in records],
                                                                  baseline=False)}
        sampling = run.manifest["adapter"]["config"]["sampling"]["base"]
        if len(records) == 2 and sampling["threshold"] == "none":
            none_row = next(r for r in rows if r[1] == "none")
            assert none_row[2] == cell(stats["toyworld.colour"]) and none_row[5] == cell(stats["toyworld.all"])

    assert sweeps.main(argv) == 0  # a rerun reuses every run
    again = _rows(out.read_text())
    assert [r[:6] for r in again] == [r[:6] for r in rows] and all(r[-1] == "0" for r in again)
