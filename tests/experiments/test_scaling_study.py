"""Smoke test: the scaling study trains each chosen base with `evalkit train`, evaluates it with `evalkit run` +
`evalkit score`, compares it with the reference by `evalkit compare` and writes its table, plot and report."""

import json

import pytest

from evalkit.errors import EvalkitError
from evalkit.experiments import scaling_study

TINY = ["--unet-opt", "channel_mults=[1,2]", "--unet-opt", "num_res_blocks=1", "--unet-opt", "attn_levels=[1]",
        "--unet-opt", "cond_dim=16", "--unet-opt", "heads=2"]


def test_the_reference_and_a_narrower_unet(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "out"
    argv = ["--steps", "2", "--batch-size", "2", "--warmup-steps", "1", "--save-every", "1", "--dim", "16", *TINY,
            "--benchmark", "toyworld-validation", "--prompts", "3", "--images-per-prompt", "2", "--bootstrap", "50",
            "--only", "unet05", "--jobs", "2", "--runs", str(tmp_path / "runs"), "--out", str(out)]
    assert scaling_study.main(argv) == 0
    records = json.loads((out / "scaling.json").read_text())["rows"]
    assert [r["slug"] for r in records] == ["enc6", "unet05"]
    by_slug = {r["slug"]: r for r in records}
    assert by_slug["unet05"]["parameters"] < by_slug["enc6"]["parameters"]
    for record in records:
        assert 0.0 <= record["stats"]["all"]["value"] <= 1.0 and record["training_seconds"] > 0
        assert bool(record["paired_vs_reference"]) == (record["slug"] != "enc6")
    models = tmp_path / "runs" / "models"
    encoders = {slug: json.loads((models / slug / "base.json").read_text())["text_encoder"] for slug in by_slug}
    assert encoders["enc6"]["layers"] == [6] and encoders["unet05"]["layers"] == [6]
    assert json.loads((models / "unet05" / "base.json").read_text())["model"]["dim"] == 8
    text = (out / "scaling.md").read_text()
    assert "| **encoder 6, U-Net 1x** | 6 |" in text and "--jobs 2" in text
    assert (out / "scaling.png").stat().st_size > 0 and (out / "report" / "report.html").is_file()
    # rerun: every model is already trained and every run made; nothing is remade
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "evals").rglob("*.png")}
    assert scaling_study.main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "evals").rglob("*.png")} == before


def test_an_unknown_row_is_a_clear_error(tmp_path):
    with pytest.raises(EvalkitError, match="unknown row 'xl'"):
        scaling_study.main(["--only", "xl", "--out", str(tmp_path)])


def test_each_row_changes_one_thing_from_the_reference():
    options = {m.slug: m.train_options(32) for m in scaling_study.MODELS}
    assert options["enc0"] == ["--text-layers", "0", "--model-opt", "dim=32"]
    assert options["enc6"] == ["--text-layers", "6", "--model-opt", "dim=32"]
    assert options["unet05"] == ["--text-layers", "6", "--model-opt", "dim=16"]
    assert options["unet2"] == ["--text-layers", "6", "--model-opt", "dim=64"]
    differ = {slug: sum(a != b for a, b in zip(o, options["enc6"])) for slug, o in options.items()}
    assert differ == {"enc0": 1, "enc2": 1, "enc4": 1, "enc6": 0, "unet05": 1, "unet2": 1}
