"""`--opt toyworld.bootstrap=B`: a bootstrap over prompts whose replicates the regression gate pairs."""

from __future__ import annotations

import json

import numpy as np

from evalkit.benchmarks.registry import load_benchmark
from evalkit.cli import main
from evalkit.runs.store import ImageRecord, Run, image_file
from evalkit.toyworld.render import render
from evalkit.toyworld.scenes import Scene

PROMPTS, SAMPLES = 16, 2


def _run(folder, wrong: set[tuple[int, int]]):
    """Ground-truth renders, except the (row, sample) pairs in ``wrong``, which are empty (background only)."""
    rows = load_benchmark("toyworld").rows[:PROMPTS]
    records = [ImageRecord(r.index, s, 1000 * r.index + s, image_file(r.index, s), r.prompt, r.category, r.extra)
               for r in rows for s in range(SAMPLES)]
    manifest = {"run_id": folder.name, "benchmark": {"name": "toyworld", "content_hash": "x"}, "status": "complete",
                "images_per_prompt": SAMPLES}
    run = Run.create(folder, manifest, records)
    for record in records:
        scene = Scene.from_dict(rows[record.prompt_index].extra["scene"])
        if (record.prompt_index, record.sample) in wrong:
            scene = Scene(objects=(), category=scene.category)
        run.save_image(record, render(scene, 64))
    return run.path, rows


def _score(path, resamples=300):
    assert main(["score", str(path), "--metrics", "toyworld", "--opt", "toyworld.baseline=false",
                 "--opt", f"toyworld.bootstrap={resamples}"]) == 0
    return json.loads((path / "metrics.json").read_text())["metrics"]


def test_replicates_are_the_accuracy_over_resampled_prompts(tmp_path):
    wrong = {(i, 0) for i in range(0, PROMPTS, 3)}
    path, rows = _run(tmp_path / "run", wrong)
    stat = _score(path)["toyworld.all"]
    boot = stat["details"]["bootstrap"]
    assert stat["overall"]["method"] == "bootstrap-prompts" and boot["resamples"] == 300 and boot["unit"] == "prompt"
    # independently: per prompt (sorted row index) how many of its images are right, then each draw's share
    right = {r.index: SAMPLES - ((r.index, 0) in wrong) for r in rows}
    keys = sorted(right)
    draws = np.random.default_rng(boot["seed"]).integers(0, len(keys), size=(300, len(keys)))
    expected = [sum(right[keys[j]] for j in row) / (SAMPLES * len(row)) for row in draws]
    np.testing.assert_allclose(boot["replicates"], expected, rtol=0, atol=1e-12)
    assert stat["overall"]["value"] == 1 - len(wrong) / (PROMPTS * SAMPLES)
    low, high = np.percentile(expected, [2.5, 97.5])
    assert (stat["overall"]["low"], stat["overall"]["high"]) == (low, high)


def test_the_gate_pairs_two_runs_over_the_same_prompts_and_fails_a_real_drop(tmp_path, capsys):
    good, _ = _run(tmp_path / "good", set())
    bad, _ = _run(tmp_path / "bad", {(i, s) for i in range(0, PROMPTS, 2) for s in range(SAMPLES)})
    _score(good), _score(bad)
    baseline = tmp_path / "baseline.json"
    assert main(["check", str(good), "--baseline", str(baseline), "--update-baseline",
                 "--metrics", "toyworld.all"]) == 0
    assert main(["check", str(good), "--baseline", str(baseline)]) == 0
    capsys.readouterr()
    assert main(["check", str(bad), "--baseline", str(baseline), "--json"]) == 1
    (check,) = json.loads(capsys.readouterr().out)["checks"]
    assert check["stat"] == "toyworld.all" and "paired" in json.dumps(check)
