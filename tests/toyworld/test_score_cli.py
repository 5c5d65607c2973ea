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

    assert main(["score", str(run.path), "--metrics", "toyworld", "--opt", "toyworld.baseline_samples=2"]) == 0
    stats = json.loads((run.path / "metrics.json").read_text())["metrics"]
    assert {name for name in stats if name.startswith("toyworld.")} == {
        "toyworld.colour", "toyworld.shape", "toyworld.binding", "toyworld.size", "toyworld.count",
        "toyworld.position", "toyworld.all"}
    everything = stats["toyworld.all"]
    assert everything["metric"] == "toyworld" and everything["higher_is_better"] is True
    assert everything["overall"]["value"] == 1.0 and everything["overall"]["n"] == 12
    assert everything["overall"]["method"] == "wilson" and everything["overall"]["low"] < 1.0
    assert set(everything["groups"]["category"]) == {r.category for r in rows}
    chance = everything["details"]["baselines"]["random-scenes"]
    assert chance["samples_per_prompt"] == 2 and chance["overall"]["n"] == 24 and chance["overall"]["value"] < 0.2
    assert "toyworld.all" in capsys.readouterr().out
