"""The toyworld benchmark and the toyworld metric on tiny fake runs of ground-truth and shuffled images."""

from __future__ import annotations

import math

import pytest

from evalkit.benchmarks.registry import load_benchmark
from evalkit.errors import EvalkitError
from evalkit.metrics.toyworld import score_toyworld, unconditional_baseline, wilson_interval
from evalkit.runs.store import ImageRecord, Run, image_file
from evalkit.toyworld.analyzer import DetectedObject, score_objects
from evalkit.toyworld.palette import HELDOUT_COMBOS
from evalkit.toyworld.render import render
from evalkit.toyworld.scenes import Scene

# Pinned: the benchmark must not drift (runs of different models are compared prompt by prompt).
TOYWORLD_HASH = "sha256:4da7f789d4e926e589b01f9edd00c0d8120b3be2beeb965604e1e7871d50c379"


def test_benchmark_has_200_heldout_rows_with_specs_and_a_stable_hash():
    bench = load_benchmark("toyworld")
    assert bench.name == "toyworld" and len(bench.rows) == 200
    assert [r.index for r in bench.rows] == list(range(200))
    assert set(bench.categories()) == {"Colors", "Counting", "Positional", "Binding"}
    assert bench.content_hash == load_benchmark("toyworld").content_hash == TOYWORLD_HASH
    for row in bench.rows:
        first = row.extra["spec"]["groups"][0]
        assert (first["colour"], first["shape"]) in HELDOUT_COMBOS
        assert row.extra["spec"]["category"] == row.category
    with pytest.raises(EvalkitError):
        load_benchmark("toyworld", "prompts.csv")


def _fake_run(tmp_path, rows, images, samples=1) -> Run:
    records = [
        ImageRecord(row.index, s, 1000 * row.index + s, image_file(row.index, s), row.prompt, row.category, row.extra)
        for row in rows
        for s in range(samples)
    ]
    manifest = {"run_id": "toy-test", "benchmark": {"name": "toyworld", "content_hash": "x"}, "status": "complete"}
    run = Run.create(tmp_path / "run", manifest, records)
    for record, image in zip(records, images):
        if image is not None:
            run.save_image(record, image)
    return run


def test_ground_truth_images_score_about_100_percent_and_shuffled_ones_low(tmp_path):
    rows = load_benchmark("toyworld").rows[:60]
    truth = [render(Scene.from_dict(row.extra["scene"]), 64) for row in rows]
    result = score_toyworld(_fake_run(tmp_path / "truth", rows, truth))
    assert result["n_images"] == 60 and result["n_prompts"] == 60
    for question, stats in result["overall"].items():
        assert stats["accuracy"] == 1.0, (question, stats)
        assert stats["ci95"][0] < 1.0 and stats["ci95"][1] == pytest.approx(1.0)
    assert set(result["per_category"]) == {"Colors", "Counting", "Positional", "Binding"}
    assert result["overall"]["count"]["n"] == sum(r.category == "Counting" for r in rows)
    assert result["chance"]["overall"]["all"] < 0.1 and set(result["chance"]["per_category"]) == set(result["per_category"])

    shuffled = truth[1:] + truth[:1]  # every image answers the wrong prompt
    low = score_toyworld(_fake_run(tmp_path / "shuffled", rows, shuffled), chance=False)
    assert low["overall"]["all"]["accuracy"] < 0.15
    assert low["overall"]["colour"]["accuracy"] < 0.6


def test_only_completed_images_are_scored_and_details_are_per_image(tmp_path):
    rows = load_benchmark("toyworld").rows[:6]
    images = [render(Scene.from_dict(row.extra["scene"]), 32) for row in rows for _ in range(2)]
    images[3] = None  # not generated yet
    result = score_toyworld(_fake_run(tmp_path, rows, images, samples=2), details=True, chance=False)
    assert result["n_images"] == 11 and len(result["images"]) == 11
    assert all(image["all"] for image in result["images"])


def test_run_without_specs_is_a_user_error(tmp_path):
    from evalkit.benchmarks.registry import PromptRow

    rows = [PromptRow(0, "a cat", "Colors", {})]
    run = _fake_run(tmp_path, rows, [render(Scene((), "Colors"), 32)])
    with pytest.raises(EvalkitError, match="toy-world spec"):
        score_toyworld(run)


def test_wilson_interval_matches_the_formula():
    for successes, trials in [(0, 10), (7, 10), (50, 200), (200, 200)]:
        p, z = successes / trials, 1.959963984540054
        centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
        half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
        low, high = wilson_interval(successes, trials)
        assert low == pytest.approx(centre - half, abs=1e-9) and high == pytest.approx(centre + half, abs=1e-9)


def test_unconditional_baseline_is_chance_level():
    rows = load_benchmark("toyworld").rows
    pairs = [(row.category, row.extra["spec"]) for row in rows]
    baseline = unconditional_baseline(pairs, samples_per_prompt=2, size=32)
    assert baseline["n_images"] == 400
    assert 0.0 < baseline["overall"]["shape"]["accuracy"] < 0.6
    assert baseline["overall"]["all"]["accuracy"] < 0.05
    # a text-blind model trained on the train split never draws a held-out combination
    train_only = unconditional_baseline(pairs, samples_per_prompt=1, size=32, split="train")
    assert train_only["overall"]["binding"]["accuracy"] == 0.0


def _obj(colour, shape, x, y, size="small"):
    return DetectedObject(colour, shape, size, (x, y), 0.02, 1.0)


def test_spec_questions_on_hand_made_detections():
    spec = {"groups": [{"colour": "red", "shape": "circle", "size": None, "count": 1},
                       {"colour": "blue", "shape": "square", "size": None, "count": 1}],
            "exact_count": False, "relation": {"a": 0, "b": 1, "rel": "left_of"}, "region": None}
    right = [_obj("red", "circle", 0.2, 0.5), _obj("blue", "square", 0.8, 0.52)]
    assert score_objects(right, spec)["position"] and score_objects(right, spec)["all"]
    swapped = [_obj("red", "circle", 0.8, 0.5), _obj("blue", "square", 0.2, 0.5)]
    assert score_objects(swapped, spec)["position"] is False
    diagonal = [_obj("red", "circle", 0.2, 0.1), _obj("blue", "square", 0.3, 0.9)]  # mostly "above", not "left of"
    assert score_objects(diagonal, spec)["position"] is False
    unbound = [_obj("red", "square", 0.2, 0.5), _obj("blue", "circle", 0.8, 0.5)]
    result = score_objects(unbound, spec)
    assert result["colour"] and result["shape"] and not result["binding"] and not result["all"]
    assert result["count"] is None and result["size"] is None

    counting = {"groups": [{"colour": "green", "shape": "triangle", "size": None, "count": 3}],
                "exact_count": True, "relation": None, "region": None}
    three = [_obj("green", "triangle", x, 0.5) for x in (0.2, 0.5, 0.8)]
    assert score_objects(three, counting)["count"] and score_objects(three, counting)["all"]
    assert not score_objects(three[:2], counting)["count"]
    assert not score_objects(three + [_obj("red", "circle", 0.5, 0.1)], counting)["count"]
    mixed = three[:2] + [_obj("green", "circle", 0.8, 0.5)]  # right count of green things, one wrong shape
    assert score_objects(mixed, counting)["count"] and not score_objects(mixed, counting)["all"]

    region = {"groups": [{"colour": "cyan", "shape": "cross", "size": "large", "count": 1}],
              "exact_count": False, "relation": None, "region": {"a": 0, "region": "bottom"}}
    assert score_objects([_obj("cyan", "cross", 0.5, 0.85, "large")], region)["all"]
    result = score_objects([_obj("cyan", "cross", 0.5, 0.5, "small")], region)
    assert result["position"] is False and result["size"] is False
    with pytest.raises(EvalkitError):
        score_objects([], {"exact_count": False})
