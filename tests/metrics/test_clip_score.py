"""CLIP score (the `clip` metric) equals a direct open_clip cosine computation with torchmetrics' formula, counts
truncated prompts, and its CIs behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.metrics.bootstrap import percentile_interval, prompt_resamples, prompts_hash
from evalkit.images import list_images
from evalkit.metrics.score import ScoringConfig, score_run
from evalkit.runs.store import ImageRecord, Run, image_file
from tests.metrics.conftest import TINY_CLIP

LONG = " ".join(["a very long prompt"] * 30)  # 120 words: past CLIP's 77-token context
PROMPTS = ["a red cube on a table", "two green spheres", "a blue cat wearing a hat", LONG]


def clip_run(tmp_path, folders):
    import shutil

    paths = list_images(folders[0])[:8]
    records = [ImageRecord(i // 2, i % 2, i, image_file(i // 2, i % 2), PROMPTS[i // 2], "c") for i in range(8)]
    run = Run.create(tmp_path / "run", {"run_id": "clip-run", "benchmark": {"name": "t", "content_hash": "x"},
                                        "images_per_prompt": 2, "n_images": 8}, records)
    for record, path in zip(records, paths):
        shutil.copy(path, run.image_path(record))
    return run, [run.image_path(r) for r in records], [r.prompt for r in records]


def score_clip(run, clip_weights, **options):
    config = ScoringConfig(weights={"clip": clip_weights}, progress=False, bootstrap=200)
    opts = {"clip.model": TINY_CLIP, "clip.pretrained": "test", **{f"clip.{k}": v for k, v in options.items()}}
    return score_run(run.path, ["clip"], None, opts, config)


def test_clip_score_equals_direct_open_clip_cosine(clip_weights, folders, tmp_path):
    import open_clip

    run, paths, prompts = clip_run(tmp_path, folders)
    document = score_clip(run, clip_weights)
    stat = document["metrics"]["clip"]
    ours = np.array([stat["details"]["per_image"][f"images/{p.name}"] for p in paths])

    model, _, preprocess = open_clip.create_model_and_transforms(TINY_CLIP, pretrained=None)
    model.load_state_dict(torch.load(clip_weights, weights_only=True))
    model.eval()
    tokenizer = open_clip.get_tokenizer(TINY_CLIP)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths]))
        text = model.encode_text(tokenizer(prompts))
    # torchmetrics' formula: 100 * cosine of L2-normalised embeddings, clamped at 0.
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    expected = torch.clamp(100 * (image * text).sum(-1), min=0).numpy()
    assert np.allclose(ours, expected, rtol=1e-5, atol=1e-4)
    assert ours.min() >= 0 and len(set(np.round(ours, 4))) > 1
    assert stat["overall"]["value"] == pytest.approx(expected.mean(), rel=1e-5)
    # the one long prompt is truncated by the tokenizer, and counted, never silently
    assert stat["details"]["prompts_truncated"] == 1 and stat["details"]["truncated_prompt_indices"] == [3]
    assert any("truncated" in w for w in document["warnings"])


def test_unknown_clip_model_without_weights_is_a_clear_error(tmp_path, folders):
    run, _, _ = clip_run(tmp_path, folders)
    with pytest.raises(EvalkitError, match="weights"):
        score_run(run.path, ["clip"], None, {"clip.pretrained": "laion-nonexistent"}, ScoringConfig(progress=False))


def test_wrong_checkpoint_for_model_is_a_clear_error(tmp_path, folders):
    run, _, _ = clip_run(tmp_path, folders)
    bogus = tmp_path / "bogus.pt"
    torch.save({"not": torch.zeros(1)}, bogus)
    with pytest.raises(EvalkitError, match="not a checkpoint"):
        score_clip(run, bogus)


def test_prompt_bootstrap_covers_the_mean_shrinks_with_n_and_pairs_runs():
    rng = np.random.default_rng(0)

    def interval(values, keys):
        draws = prompt_resamples(keys, 2000, seed=1)
        return percentile_interval([values[d].mean() for d in draws])

    small = rng.normal(30, 2, size=20)
    large = rng.normal(30, 2, size=2000)
    s_low, s_high = interval(small, np.arange(20))
    l_low, l_high = interval(large, np.arange(2000))
    assert s_low < small.mean() < s_high and (l_high - l_low) < (s_high - s_low) / 5
    # the standard error of a mean of 2000 N(30, 2) draws is 0.045: a 95% interval is ~0.18 wide
    assert 0.12 < l_high - l_low < 0.24
    # all samples of a drawn prompt come along; two runs over the same prompts draw the same prompts
    keys = np.repeat([7, 3, 9], 2)
    first, again = prompt_resamples(keys, 5, seed=4), prompt_resamples(keys[::-1].copy(), 5, seed=4)
    for draw in first:
        assert len(draw) == 6 and all((keys[draw] == k).sum() % 2 == 0 for k in (3, 7, 9))
    assert [sorted(keys[d]) for d in first] == [sorted(keys[::-1][d]) for d in again]
    assert prompts_hash([3, 7, 9]) == prompts_hash([9, 7, 3, 3]) != prompts_hash([3, 7])
