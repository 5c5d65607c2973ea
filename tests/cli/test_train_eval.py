"""`evalkit train --eval-every`: the stage being trained is generated through the run pipeline on the validation
benchmark and scored by the toyworld metric, one CSV row per evaluated step."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import torch

from evalkit.benchmarks.registry import load_benchmark, select_subset
from evalkit.cli.train_eval import COLUMNS, append_csv_row, eval_hook
from evalkit.errors import EvalkitError
from evalkit.imagen.cascade import ImagenCascade
from evalkit.imagen.sampling import SamplerConfig
from evalkit.imagen.train import TrainConfig, Trainer
from evalkit.metrics.toyworld import score_toyworld_images
from evalkit.runs.spec import image_seed
from evalkit.runs.store import open_run
from evalkit.toyworld.render import render_array
from evalkit.toyworld.scenes import Scene
from tests.imagen.helpers import HashTextEncoder

TINY = {"dim": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "attn_levels": (1,), "cond_dim": 16, "heads": 2}


def _train_with_eval(tmp_path, steps=2, eval_every=1, prompts=4, images_per_prompt=1, size=16):
    config = TrainConfig(stage="base", out=str(tmp_path / "ckpt"), steps=steps, batch_size=2, lr=3e-3, warmup_steps=1,
                         save_every=eval_every, log_every=1, model={**TINY, "image_size": size}, device="cpu",
                         min_snr_gamma=None)
    trainer = Trainer(config, text_encoder=HashTextEncoder(max_tokens=16))
    args = SimpleNamespace(eval_every=eval_every, eval_split="validation", eval_prompts=prompts,
                           eval_images_per_prompt=images_per_prompt)
    trainer.run(on_checkpoint=eval_hook(args))
    path = trainer.train_dir / "eval-toyworld-validation.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        return trainer, list(csv.DictReader(handle))


def test_each_evaluated_step_is_a_scored_validation_run(tmp_path, monkeypatch):
    """A cascade that draws exactly what each validation prompt asks scores 100% on every question asked."""
    rows = select_subset(load_benchmark("toyworld-validation").rows, 5)
    truth = {r.prompt: torch.from_numpy(render_array(Scene.from_dict(r.extra["scene"]), 32)) for r in rows}
    asked = []

    def draw(self, prompts, seeds, sampling=None, progress=None):
        asked.append((list(prompts), list(seeds)))
        return torch.stack([truth[p] for p in prompts]).permute(0, 3, 1, 2).float() / 127.5 - 1

    monkeypatch.setattr(ImagenCascade, "generate", draw)
    trainer, table = _train_with_eval(tmp_path, prompts=5, size=32)
    assert [row["step"] for row in table] == ["1", "2"] and list(table[0]) == list(COLUMNS)
    for row in table:
        assert row["benchmark"] == "toyworld-validation" and row["n_prompts"] == "5"
        assert row["all"] == "1.0000" and row["all_n"] == "5" and float(row["all_low"]) < 1.0
        run = open_run(row["run"])
        assert run.benchmark == "toyworld-validation" and run.manifest["status"] == "complete"
        assert run.path.parent == trainer.train_dir / "eval" / f"step-{int(row['step']):06d}"
        # the run's hashed per-image seeds, the same at every step
        assert [(r.prompt_index, r.seed) for r in run.records()] == [(r.index, image_seed(0, r.index, 0)) for r in rows]
    assert asked[0] == ([r.prompt for r in rows], [image_seed(0, r.index, 0) for r in rows])
    assert open_run(table[0]["run"]).run_id != open_run(table[1]["run"]).run_id  # other weights, another run


def test_the_csv_holds_what_the_toyworld_metric_says_about_the_stored_images(tmp_path, monkeypatch):
    import evalkit.imagen.train

    few_steps = SamplerConfig(sampler="ddim", steps=2, guidance=2.0, threshold="static")  # a fast sampler for a test
    monkeypatch.setattr(evalkit.imagen.train, "default_sampling", lambda stage: few_steps)
    trainer, table = _train_with_eval(tmp_path, steps=1, prompts=3, images_per_prompt=2)
    assert len(table) == 1 and table[0]["images_per_prompt"] == "2"
    run = open_run(table[0]["run"])
    records = run.completed_records()
    assert len(records) == 6
    for stat in score_toyworld_images(records, [run.image_path(r) for r in records], baseline=False):
        question = stat.name.removeprefix("toyworld.")
        assert table[0][f"{question}_n"] == str(stat.overall.n)
        if stat.overall.n:
            assert float(table[0][question]) == pytest.approx(stat.overall.value, abs=1e-4)
            assert float(table[0][f"{question}_high"]) == pytest.approx(stat.overall.high, abs=1e-4)
        else:
            assert table[0][question] == ""


def test_a_csv_with_other_columns_is_not_appended_to(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("step,mode,colour,count,position,shape,binding,all\n", encoding="utf-8")
    with pytest.raises(EvalkitError, match="other columns"):
        append_csv_row(path, ["1"])


def test_a_step_is_scored_as_evalkit_run_on_the_saved_checkpoint_would_score_it(tmp_path, monkeypatch):
    """The hook's run is the run `evalkit run --model imagen --model-path <out> --opt stages=1` makes: same config,
    weights hash (so the same run id) and the same image bytes, from the checkpoint's float16 weights."""
    import evalkit.imagen.train
    import numpy as np
    from PIL import Image

    from evalkit.adapters import AdapterOptions
    from evalkit.adapters.imagen import create
    from evalkit.adapters.base import GenerationBatch

    few_steps = SamplerConfig(sampler="ddim", steps=2, guidance=2.0, threshold="static")
    monkeypatch.setattr(evalkit.imagen.train, "default_sampling", lambda stage: few_steps)
    trainer, table = _train_with_eval(tmp_path, steps=1, prompts=2)
    run = open_run(table[0]["run"])
    import evalkit.imagen.text_encoders

    # the adapter refuses encoder kinds evalkit cannot load; this checkpoint names the test's own (swapped in below)
    monkeypatch.setattr(evalkit.imagen.text_encoders, "ENCODER_KINDS", (*evalkit.imagen.text_encoders.ENCODER_KINDS, "hash"))
    adapter = create(AdapterOptions(model_path=str(tmp_path / "ckpt"), extra={"stages": "1"}))
    assert run.manifest["adapter"]["config"] == adapter.config()
    assert run.manifest["adapter"]["checkpoint_hash"] == adapter.checkpoint_hash()
    adapter.cascade._text_encoder = HashTextEncoder(max_tokens=16)  # the tiny encoder the test trained with
    record = run.completed_records()[0]
    (image,) = adapter.generate(GenerationBatch([record.prompt], [record.seed], 16, 16))
    with Image.open(run.image_path(record)) as stored:
        assert np.array_equal(np.asarray(stored.convert("RGB")), np.asarray(image))


def test_an_expert_without_a_base_beside_it_is_scored_inside_the_init_from_base(tmp_path, monkeypatch):
    import evalkit.imagen.train

    few_steps = SamplerConfig(sampler="ddim", steps=2, guidance=2.0, threshold="static")
    monkeypatch.setattr(evalkit.imagen.train, "default_sampling", lambda stage: few_steps)
    base = TrainConfig(stage="base", out=str(tmp_path / "base"), steps=1, batch_size=2, warmup_steps=1,
                       model={**TINY, "image_size": 16}, device="cpu", min_snr_gamma=None)
    Trainer(base, text_encoder=HashTextEncoder(max_tokens=16)).run()
    expert = TrainConfig(stage="base", out=str(tmp_path / "expert"), steps=1, batch_size=2, warmup_steps=1,
                         model={**TINY, "image_size": 16}, device="cpu", min_snr_gamma=None, expert_band=0.8)
    trainer = Trainer(expert, text_encoder=HashTextEncoder(max_tokens=16))
    args = SimpleNamespace(eval_every=1, eval_split="heldout", eval_prompts=2, eval_images_per_prompt=1)
    trainer.run(on_checkpoint=eval_hook(args, tmp_path / "base"))
    with open(trainer.train_dir / "eval-toyworld.csv", newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    config = open_run(row["run"]).manifest["adapter"]["config"]
    assert config["experts"] == ["base_expert"] and " + base_expert of " in config["checkpoint"]
    assert row["benchmark"] == "toyworld" and row["all_n"] == "2"
    with pytest.raises(EvalkitError, match="no base stage"):
        eval_hook(args)(SimpleNamespace(step=1, config=expert, device="cpu", name="base_expert",
                                        text_encoder=None, train_dir=tmp_path))
