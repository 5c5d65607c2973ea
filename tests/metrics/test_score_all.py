"""The issue's "done when": `evalkit score RUN --metrics fid,kid,cmmd,prdc,fd-dinov2,clip --ref REF` writes a
schema-valid metrics.json from one scoring call (random networks saved in the real formats), and the numbers in it
equal independent implementations on the features that call cached."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.metrics import extractors, metrics_file
from evalkit.images import list_images
from evalkit.runs.store import ImageRecord, Run, image_file
from tests.metrics.conftest import TINY_CLIP, save_random_dinov2, synthetic_images


@pytest.fixture(scope="module")
def dinov2_weights(tmp_path_factory):
    # ViT-L/14's width in facebook's file layout, one block deep (the depth is read from the file)
    return save_random_dinov2(tmp_path_factory.mktemp("dinov2") / "dinov2_vitl14_pretrain.pth", width=1024, depth=1)


@pytest.fixture(scope="module")
def scored(tmp_path_factory, inception_weights, clip_weights, dinov2_weights):
    root = tmp_path_factory.mktemp("all")
    generated = synthetic_images(root / "gen", 16, seed=11, size=40)
    reference = synthetic_images(root / "ref", 14, seed=12, brightness=30, size=40)
    records = [ImageRecord(i // 2, i % 2, i, image_file(i // 2, i % 2), f"a prompt about thing {i // 2}",
                           ["Colors", "Counting"][i // 8]) for i in range(16)]
    manifest = {"run_id": "all-metrics", "benchmark": {"name": "test", "content_hash": "sha256:0", "prompts": 8},
                "images_per_prompt": 2, "n_images": 16, "adapter": {"name": "folder"}}
    run = Run.create(root / "run", manifest, records)
    for record, source in zip(records, list_images(generated)):
        shutil.copy(source, run.image_path(record))
    argv = ["score", str(run.path), "--metrics", "fid,kid,cmmd,prdc,fd-dinov2,clip", "--ref", str(reference),
            "--weights", f"inception={inception_weights}", "--weights", f"clip={clip_weights}",
            "--weights", f"clip-cmmd={clip_weights}", "--weights", f"dinov2-vitl14={dinov2_weights}",
            "--opt", f"clip.model={TINY_CLIP}", "--opt", "clip.pretrained=test",
            "--opt", f"cmmd.model={TINY_CLIP}", "--opt", "cmmd.pretrained=test",
            "--opt", "kid.subset_size=8", "--opt", "prdc.groups=true", "--bootstrap", "100"]
    assert main(argv) == 0
    return run.path, reference, json.loads((run.path / "metrics.json").read_text())


def _features(name, weights, settings, folder_or_paths):
    net = extractors.create_extractor(name, extractors.ExtractorOptions(weights=weights, settings=settings))
    paths = folder_or_paths if isinstance(folder_or_paths, list) else list_images(folder_or_paths)
    return extractors.features(paths, net)


def test_one_call_writes_every_metric_schema_valid(scored):
    _, _, document = scored
    metrics_file.validate(document)
    expected = {"fid", "kid", "cmmd", "precision", "recall", "density", "coverage", "fd-dinov2", "clip"}
    assert set(document["metrics"]) == expected
    for name, stat in document["metrics"].items():
        assert stat["overall"]["n"] == 16, name
        assert stat["key"]["extractor"]["weights_sha256"], name
    assert document["metrics"]["fd-dinov2"]["key"]["extractor"]["name"] == "dinov2-vitl14"
    assert document["metrics"]["cmmd"]["details"]["estimator"] == "biased"
    assert document["metrics"]["cmmd"]["options"]["model"] == TINY_CLIP
    assert set(document["metrics"]["precision"]["groups"]["category"]) == {"Colors", "Counting"}


def test_prdc_in_metrics_json_equals_the_prdc_package(scored, inception_weights):
    from prdc import compute_prdc

    run_path, reference, document = scored
    run_images = sorted((run_path / "images").glob("*.png"))
    fake = _features("inception", inception_weights, {}, run_images)
    real = _features("inception", inception_weights, {}, reference)
    theirs = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    for name in ("density", "coverage"):
        assert document["metrics"][name]["overall"]["value"] == pytest.approx(theirs[name], abs=1e-12)


def test_cmmd_in_metrics_json_equals_the_published_formula(scored, clip_weights):
    run_path, reference, document = scored
    settings = {"model": TINY_CLIP, "pretrained": "test"}
    x = _features("clip-cmmd", clip_weights, settings, reference).astype(np.float64)
    y = _features("clip-cmmd", clip_weights, settings, sorted((run_path / "images").glob("*.png"))).astype(np.float64)
    # google-research cmmd distance.mmd: gamma = 1 / (2 sigma^2), plain means (biased), x1000
    gamma = 1 / (2 * 10.0**2)

    def k(a, b):
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-gamma * sq)

    expected = 1000 * (k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    assert document["metrics"]["cmmd"]["overall"]["value"] == pytest.approx(expected, rel=1e-6, abs=1e-9)
