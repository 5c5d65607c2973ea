"""`evalkit score` on a small run: metrics.json with overall, per-category and per-challenge numbers, merged."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from evalkit.cli import main, metrics_cmd
from evalkit.errors import EvalkitError
from evalkit.metrics.images import list_images
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
    run = Run.create(tmp_path / "run", {"run_id": "test-run", "benchmark": {"name": "toy"}}, records)
    for record, source in zip(records, sources):
        shutil.copy(source, run.image_path(record))
    (run.path / "metrics.json").write_text(json.dumps({"human": {"kept": True}}))
    return run.path


def score(argv):
    parser = argparse.ArgumentParser()
    metrics_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["score", *argv])
    return args.handler(args)


def test_score_writes_merged_metrics(run_dir, folders, inception_weights, clip_weights, capsys):
    code = score([str(run_dir), "--metrics", "fid,kid,clip", "--ref", str(folders[1]), "--weights",
                  str(inception_weights), "--clip-model", TINY_CLIP, "--clip-pretrained", "test",
                  "--clip-weights", str(clip_weights), "--bootstrap", "200"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["human"] == {"kept": True}  # merged, not overwritten
    fid = metrics["fid"]
    assert fid["overall"]["n"] == 8 and fid["n_ref"] == 12 and fid["resize"] == "torchmetrics"
    assert set(fid["per_category"]) == set(CATEGORIES) and set(fid["per_challenge"]) == {"Basic", "Complex"}
    assert fid["per_category"]["Colors"]["n"] == 4 and fid["overall"]["fid"] > 0
    assert len(fid["weights_sha256"]) == 64 and fid["versions"]["torch"]
    assert metrics["kid"]["overall"]["kid_subset_size"] == 8
    clip = metrics["clip"]
    assert clip["overall"]["n"] == 8 and clip["overall"]["n_prompts"] == 4
    assert clip["overall"]["ci_low"] <= clip["overall"]["mean"] <= clip["overall"]["ci_high"]
    assert set(clip["per_category"]) == set(CATEGORIES) and len(clip["per_image"]) == 8
    assert "rank-deficient" in capsys.readouterr().err

    # `evalkit fid RUN REF` reads the same cached features and agrees with metrics.json.
    assert main(["fid", str(run_dir), str(folders[1]), "--weights", str(inception_weights), "--json",
                 "--kid-subset-size", "8"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert direct["fid"] == pytest.approx(fid["overall"]["fid"], rel=1e-12) and direct["n_a"] == 8

    # Scoring again with only clip keeps fid/kid and replaces clip; a missing image is reported, not fatal.
    (run_dir / "images" / "00003_01.png").unlink()
    assert score([str(run_dir), "--metrics", "clip", "--clip-model", TINY_CLIP, "--clip-pretrained", "test",
                  "--clip-weights", str(clip_weights), "--bootstrap", "50"]) == 0
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["fid"] == fid and again["clip"]["bootstrap_resamples"] == 50
    assert again["clip"]["overall"]["n"] == 7 and "7 of 8 planned" in capsys.readouterr().err


def test_score_rejects_unknown_metric_and_missing_ref(run_dir, inception_weights):
    with pytest.raises(EvalkitError, match="unknown metric"):
        score([str(run_dir), "--metrics", "fid,sharpness"])
    with pytest.raises(EvalkitError, match="--ref"):
        score([str(run_dir), "--metrics", "fid", "--weights", str(inception_weights)])
