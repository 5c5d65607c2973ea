"""`evalkit score RUN --metrics toyworld` end to end on a tiny run of ground-truth renders."""

from __future__ import annotations

import json

from evalkit.benchmarks.registry import load_benchmark
from evalkit.cli import main
from evalkit.runs.store import ImageRecord, Run, image_file
from evalkit.toyworld.render import render
from evalkit.toyworld.scenes import Scene


def test_score_command_writes_toyworld_accuracy(tmp_path, capsys):
    rows = load_benchmark("toyworld").rows[:12]
    records = [ImageRecord(r.index, 0, r.index, image_file(r.index, 0), r.prompt, r.category, r.extra) for r in rows]
    manifest = {"run_id": "toy-cli", "benchmark": {"name": "toyworld", "content_hash": "x"}, "status": "complete"}
    run = Run.create(tmp_path / "run", manifest, records)
    for row, record in zip(rows, records):
        run.save_image(record, render(Scene.from_dict(row.extra["scene"]), 64))

    assert main(["score", str(run.path), "--metrics", "toyworld"]) == 0
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["toyworld"]["overall"]["all"]["accuracy"] == 1.0
    assert metrics["toyworld"]["overall"]["all"]["n"] == 12
    assert "toyworld" in capsys.readouterr().out
