"""`evalkit score` on a small run: a schema-valid metrics.json with overall, per-category and per-challenge numbers,
comparability keys, merged across calls; options and names checked before anything is computed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.metrics import metrics_file
from evalkit.images import list_images
from evalkit.metrics.score import ScoringConfig, score_run
from evalkit.runs.store import ImageRecord, Run, image_file
from tests.metrics.conftest import TINY_CLIP

CATEGORIES = ["Colors", "Counting"]


@pytest.fixture
def run_dir(tmp_path, folders):
    sources = list_images(folders[0])[:8]
    records = [
        ImageRecord(prompt_index=i // 2, sample=i % 2, seed=i, file=image_file(i // 2, i % 2),
                    prompt=f"made-up prompt number {i // 2}", category=CATEGORIES[(i // 2) % 2],
                    extra={"challenge": "Basic" if i < 4 else "Complex"})
        for i in range(len(sources))
    ]
    manifest = {"run_id": "test-run", "benchmark": {"name": "toy", "content_hash": "sha256:abc", "prompts": 4},
                "images_per_prompt": 2, "n_images": 8, "adapter": {"name": "folder"}}
    run = Run.create(tmp_path / "run", manifest, records)
    for record, source in zip(records, sources):
        shutil.copy(source, run.image_path(record))
    return run.path


def clip_args(weights):
    return ["--opt", f"clip.model={TINY_CLIP}", "--opt", "clip.pretrained=test", "--weights", f"clip={weights}"]


def test_score_writes_schema_valid_merged_metrics(run_dir, folders, inception_weights, clip_weights, capsys):
    code = main(["score", str(run_dir), "--metrics", "fid,kid,clip", "--ref", str(folders[1]), "--weights",
                 f"inception={inception_weights}", *clip_args(clip_weights), "--bootstrap", "200"])
    assert code == 0
    document = json.loads((run_dir / "metrics.json").read_text())
    metrics_file.validate(document)
    assert document["schema_version"] == 1 and document["run"]["run_id"] == "test-run"
    fid = document["metrics"]["fid"]
    assert fid["overall"]["n"] == 8 and fid["overall"]["value"] > 0 and fid["higher_is_better"] is False
    assert set(fid["groups"]["category"]) == set(CATEGORIES) and set(fid["groups"]["challenge"]) == {"Basic", "Complex"}
    assert fid["groups"]["category"]["Colors"]["n"] == 4
    key = fid["key"]
    assert key["benchmark"] == {"name": "toy", "content_hash": "sha256:abc"} and key["images_per_prompt"] == 2
    assert key["extractor"]["name"] == "inception" and len(key["extractor"]["weights_sha256"]) == 64
    assert key["extractor"]["preprocessing"]["resize"] == "torchmetrics"
    assert key["reference"]["n"] == 12 and key["reference"]["hash"].startswith("sha256:")
    assert fid["versions"]["torch"]
    kid = document["metrics"]["kid"]
    assert kid["details"]["subset_size"] == 8 and kid["overall"]["method"] == "subsets-normal"
    assert kid["overall"]["low"] < kid["overall"]["value"] < kid["overall"]["high"]
    clip = document["metrics"]["clip"]
    assert clip["overall"]["n"] == 8 and clip["overall"]["method"] == "bootstrap-prompts"
    assert clip["overall"]["low"] <= clip["overall"]["value"] <= clip["overall"]["high"]
    assert set(clip["groups"]["category"]) == set(CATEGORIES) and len(clip["details"]["per_image"]) == 8
    assert clip["details"]["prompts_truncated"] == 0 and clip["key"]["reference"] is None
    out = capsys.readouterr()
    assert "rank-deficient" in out.err and "fid v" in out.out

    # `evalkit fid REF RUN` reads the same cached features and agrees with metrics.json.
    assert main(["fid", str(folders[1]), str(run_dir), "--weights", str(inception_weights), "--json",
                 "--kid-subset-size", "8"]) == 0
    direct = json.loads(capsys.readouterr().out)["metrics"]["fid"]
    assert direct["overall"]["value"] == pytest.approx(fid["overall"]["value"], rel=1e-12)

    # Scoring again with only clip keeps fid/kid and replaces clip; a missing image is reported, not fatal.
    (run_dir / "images" / "00003_01.png").unlink()
    assert main(["score", str(run_dir), "--metrics", "clip", *clip_args(clip_weights), "--bootstrap", "50"]) == 0
    again = json.loads((run_dir / "metrics.json").read_text())
    metrics_file.validate(again)
    assert again["metrics"]["fid"] == fid and again["metrics"]["clip"]["details"]["bootstrap_resamples"] == 50
    assert again["metrics"]["clip"]["overall"]["n"] == 7 and "7 of 8 planned" in capsys.readouterr().err


def test_score_run_library_api_needs_no_argparse(run_dir, folders, inception_weights):
    config = ScoringConfig(weights={"inception-2015-12-05": inception_weights}, progress=False)
    document = score_run(run_dir, ["fid"], folders[1], {"fid.groups": "false"}, config)
    metrics_file.validate(document)
    assert document["metrics"]["fid"]["groups"] == {} and document["metrics"]["fid"]["options"] == {"groups": False, "bootstrap": 0}


def test_score_rejects_bad_names_options_and_missing_ref(run_dir, inception_weights):
    config = ScoringConfig(weights={"inception-2015-12-05": inception_weights}, progress=False)
    with pytest.raises(EvalkitError, match="unknown metric 'sharpness'"):
        score_run(run_dir, ["fid", "sharpness"], None, {}, config)
    with pytest.raises(EvalkitError, match="--ref"):
        score_run(run_dir, ["fid"], None, {}, config)
    with pytest.raises(EvalkitError, match="unknown option kid.subset"):
        score_run(run_dir, ["kid"], None, {"kid.subset": "3"}, config)
    with pytest.raises(EvalkitError, match="kid.subsets"):
        score_run(run_dir, ["kid"], None, {"kid.subsets": "-3"}, config)
    with pytest.raises(EvalkitError, match="not among the metrics scored"):
        score_run(run_dir, ["fid"], None, {"cmmd.model": "ViT-B-32"}, config)
    assert not (run_dir / "metrics.json").exists()


def test_statistics_of_another_extractor_are_refused(run_dir, folders, inception_weights, tmp_path):
    from evalkit.metrics.stats import FeatureStats

    import numpy as np

    stats = FeatureStats.of(np.random.default_rng(0).normal(size=(20, 2048))).compute()
    stats.meta = {"extractor": "inception", "weights_sha256": "0" * 64, "dim": 2048,
                  "preprocessing": {"resize": "torchmetrics"}}
    stats.save(tmp_path / "other.npz")
    config = ScoringConfig(weights={"inception-2015-12-05": inception_weights}, progress=False)
    with pytest.raises(EvalkitError, match="weights_sha256=0000"):
        score_run(run_dir, ["fid"], tmp_path / "other.npz", {}, config)
    stats.meta = {"resize": "clean", "weights_sha256": None}  # written by an older evalkit: resize at the top level
    stats.save(tmp_path / "clean.npz")
    with pytest.raises(EvalkitError, match="resize=clean"):
        score_run(run_dir, ["fid"], tmp_path / "clean.npz", {}, config)
    with pytest.raises(EvalkitError, match="needs reference images"):
        score_run(run_dir, ["kid"], tmp_path / "clean.npz", {}, config)


def test_metrics_json_carries_generation_efficiency(run_dir, folders, inception_weights):
    from evalkit.runs.store import open_run

    run = open_run(run_dir)
    for images, seconds in ((4, 2.0), (4, 1.0), (2, 1.5)):
        run.append_generation_timing(images, seconds, "cpu", [(0, 0)] * images, "2026-12-01T00:00:00+00:00")
    config = ScoringConfig(weights={"inception-2015-12-05": inception_weights}, progress=False)
    document = score_run(run_dir, ["fid"], folders[1], {"fid.groups": "false"}, config)
    metrics_file.validate(document)
    generation = document["generation"]
    # per-batch seconds per image: 0.5, 0.25, 0.75 -> median 0.5, fastest 0.25
    assert generation["seconds_per_image"] == 0.5 and generation["denoised_seconds_per_image"] == 0.25
    assert generation["n_batches"] == 3 and generation["n_images"] == 10 and generation["devices"] == ["cpu"]


def test_fid_bootstrap_over_prompts_stores_pairable_replicates(run_dir, folders, inception_weights):
    config = ScoringConfig(weights={"inception-2015-12-05": inception_weights}, progress=False, seed=3)
    document = score_run(run_dir, ["fid"], folders[1], {"fid.groups": "false", "fid.bootstrap": "20"}, config)
    metrics_file.validate(document)
    fid = document["metrics"]["fid"]
    boot = fid["details"]["bootstrap"]
    assert fid["overall"]["method"] == "bootstrap-prompts" and boot["unit"] == "prompt"
    assert len(boot["replicates"]) == 20 and boot["seed"] == 3 and boot["prompts_hash"].startswith("sha256:")
    bias = np.mean(boot["replicates"]) - fid["overall"]["value"]  # resampled duplicates push FID up: recentred
    assert fid["overall"]["low"] == pytest.approx(np.percentile(boot["replicates"], 2.5) - bias)
    assert fid["overall"]["low"] < fid["overall"]["value"] < fid["overall"]["high"]
    assert len(set(boot["replicates"])) > 1
