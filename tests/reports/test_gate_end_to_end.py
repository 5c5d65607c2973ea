"""The gate on real `evalkit score` output: tiny runs scored with random-weight Inception (FID with a bootstrap
over prompts) and a tiny CLIP (CLIP score), a baseline written from one, then a rerun (same image bytes) passes,
a degraded run fails and a run scored with another resize mode is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.cli import main
from evalkit.images import list_images
from evalkit.runs.store import ImageRecord, Run, image_file
from tests.metrics.conftest import TINY_CLIP, synthetic_images

PROMPTS, PER_PROMPT = 12, 2


def make_run(root: Path, name: str, sources: list[Path]) -> Path:
    """A run directory of PROMPTS x PER_PROMPT images copied from ``sources``."""
    records = [ImageRecord(prompt_index=i // PER_PROMPT, sample=i % PER_PROMPT, seed=i,
                           file=image_file(i // PER_PROMPT, i % PER_PROMPT),
                           prompt=f"a made-up scene number {i // PER_PROMPT}", category="Colors")
               for i in range(PROMPTS * PER_PROMPT)]
    manifest = {"run_id": name, "benchmark": {"name": "toy", "content_hash": "sha256:abc", "prompts": PROMPTS},
                "images_per_prompt": PER_PROMPT, "n_images": len(records), "adapter": {"name": "folder"}}
    run = Run.create(root / name, manifest, records)
    for record, source in zip(records, sources):
        shutil.copy(source, run.image_path(record))
    return run.path


def degraded(sources: list[Path], folder: Path) -> list[Path]:
    """The same images, washed out and blurred (a model that lost its detail and colour)."""
    from PIL import ImageFilter

    folder.mkdir(parents=True)
    out = []
    for i, path in enumerate(sources):
        with Image.open(path) as image:
            grey = Image.blend(image.convert("RGB"), Image.new("RGB", image.size, (128, 128, 128)), 0.7)
            grey.filter(ImageFilter.GaussianBlur(3)).save(folder / f"d_{i:03d}.png")
        out.append(folder / f"d_{i:03d}.png")
    return out


@pytest.fixture(scope="module")
def scored(tmp_path_factory, inception_weights, clip_weights, folders):
    root = tmp_path_factory.mktemp("gate-e2e")
    images = list_images(synthetic_images(root / "model", PROMPTS * PER_PROMPT, seed=21))
    runs = {"base": make_run(root, "base", images), "rerun": make_run(root, "rerun", images),
            "worse": make_run(root, "worse", degraded(images, root / "degraded")),
            "clean-resize": make_run(root, "clean-resize", images)}
    common = ["--ref", str(folders[1]), "--workers", "0", "--weights", f"inception={inception_weights}"]
    clip = ["--weights", f"clip={clip_weights}", "--opt", f"clip.model={TINY_CLIP}", "--opt", "clip.pretrained=test",
            "--bootstrap", "200"]
    # Each FID replicate rebuilds a 2048 x 2048 covariance (~0.1 s on a CPU): 40 keep the test short. The run
    # scored with another resize mode needs none (the bootstrap option does not enter the comparison), nor CLIP.
    for name, run in runs.items():
        if name == "clean-resize":
            assert main(["score", str(run), *common, "--resize", "clean", "--metrics", "fid"]) == 0
        else:
            assert main(["score", str(run), *common, *clip, "--metrics", "fid,clip", "--opt", "fid.bootstrap=40"]) == 0
    return root, runs


def test_gate_on_scored_runs(scored, capsys):
    root, runs = scored
    baseline = root / "baseline.json"
    assert main(["check", str(runs["base"]), "--baseline", str(baseline), "--update-baseline"]) == 0
    saved = json.loads(baseline.read_text())
    assert set(saved["stats"]) == {"fid", "clip"} and len(saved["stats"]["fid"]["bootstrap"]["replicates"]) == 40
    capsys.readouterr()

    # a rerun: the same image bytes, so the same numbers and replicates: a change of exactly 0 passes
    summary = root / "rerun.md"
    assert main(["check", str(runs["rerun"]), "--baseline", str(baseline), "--summary-md", str(summary)]) == 0
    assert summary.read_text().startswith("### evalkit check: passed")
    capsys.readouterr()

    # a degraded model: FID far outside its paired noise
    summary = root / "worse.md"
    assert main(["check", str(runs["worse"]), "--baseline", str(baseline), "--summary-md", str(summary),
                 "--json"]) == 1
    result = {c["stat"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    fid = result["fid"]
    assert fid["verdict"] == "regression" and fid["noise"]["method"] == "paired-bootstrap"
    assert fid["delta"] > 0 and fid["noise"]["change_low"] > 0
    assert "| fid (lower is better) |" in summary.read_text() and "**REGRESSION**" in summary.read_text()

    # the same images through another resize mode: refused, naming the field
    assert main(["check", str(runs["clean-resize"]), "--baseline", str(baseline)]) == 2
    out = capsys.readouterr().out
    assert "fid: incomparable: extractor.preprocessing.resize differs: torchmetrics (baseline) vs clean (run)" in out


def test_compare_on_scored_runs(scored, capsys):
    _, runs = scored
    capsys.readouterr()
    assert main(["compare", str(runs["base"]), str(runs["worse"]), "--json"]) == 0
    rows = {r["stat"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["fid"]["noise"]["method"] == "paired-bootstrap" and rows["fid"]["noise"]["outside"] is True
    assert rows["clip"]["noise"]["method"] == "paired-bootstrap"
    assert main(["compare", str(runs["base"]), str(runs["clean-resize"])]) == 0
    out = capsys.readouterr().out
    assert "incomparable: extractor.preprocessing.resize" in out
    assert np.isfinite(rows["fid"]["delta"])
