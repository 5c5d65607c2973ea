"""The toyworld benchmarks and the toyworld metric on tiny fake runs of ground-truth, shuffled and random-scene
images; the Wilson intervals against statsmodels."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from evalkit.benchmarks.registry import load_benchmark
from evalkit.errors import EvalkitError
from evalkit.estimate import Estimate
from evalkit.metrics.base import Metric, metric_options
from evalkit.metrics.toyworld import (QUESTIONS, STAT_NAMES, TOYWORLD, random_scene_answers,
                                      score_toyworld_images, wilson)
from evalkit.runs.store import ImageRecord, Run, image_file
from evalkit.toyworld.analyzer import DetectedObject, score_objects
from evalkit.toyworld.palette import HELDOUT_COMBOS
from evalkit.toyworld.render import render
from evalkit.toyworld.scenes import Scene, sample_scene

# Pinned: the benchmarks must not drift (runs of different models are compared prompt by prompt).
TOYWORLD_HASH = "sha256:4da7f789d4e926e589b01f9edd00c0d8120b3be2beeb965604e1e7871d50c379"
VALIDATION_HASH = "sha256:8daf738d44b43f52e6f0e6bbefea7133fde4627da2659123641a39d3f8ad66b8"


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


def test_validation_benchmark_is_disjoint_from_the_heldout_one():
    heldout, validation = load_benchmark("toyworld"), load_benchmark("toyworld-validation")
    assert validation.name == "toyworld-validation" and len(validation.rows) == 200
    assert validation.content_hash == VALIDATION_HASH != heldout.content_hash
    assert len({r.prompt for r in validation.rows}) == 200
    assert not {r.prompt for r in validation.rows} & {r.prompt for r in heldout.rows}
    assert set(validation.categories()) == {"Colors", "Counting", "Positional", "Binding"}
    for row in validation.rows:
        first = row.extra["spec"]["groups"][0]
        assert (first["colour"], first["shape"]) in HELDOUT_COMBOS
    with pytest.raises(EvalkitError, match="toyworld-validation"):
        load_benchmark("toyworld-validation", "prompts.csv")

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


def _context(run: Run) -> SimpleNamespace:
    """The attributes of a ScoreContext the toyworld metric reads."""
    records = run.completed_records()
    return SimpleNamespace(records=records, images=[run.image_path(r) for r in records], progress=False)


def _by_question(stats) -> dict:
    assert [s.name for s in stats] == list(STAT_NAMES)
    return dict(zip(QUESTIONS, stats))


def test_metric_declares_the_seam():
    assert isinstance(TOYWORLD, Metric)
    assert TOYWORLD.name == "toyworld" and TOYWORLD.higher_is_better and TOYWORLD.stats == STAT_NAMES
    assert TOYWORLD.needs.toyworld and TOYWORLD.needs.prompts and TOYWORLD.needs.extractor is None
    assert metric_options(TOYWORLD, {"baseline": "false", "baseline_samples": "2"}) == {
        "baseline": False, "baseline_samples": 2, "baseline_split": "any", "bootstrap": 0}
    with pytest.raises(EvalkitError):
        metric_options(TOYWORLD, {"baseline_samples": "0"})
    with pytest.raises(EvalkitError):
        metric_options(TOYWORLD, {"baseline_split": "heldout"})
    with pytest.raises(EvalkitError, match="plain image folder"):
        TOYWORLD.compute(SimpleNamespace(records=None, images=[], progress=False), metric_options(TOYWORLD, {}))


def test_ground_truth_images_score_100_percent_and_shuffled_ones_low(tmp_path):
    rows = load_benchmark("toyworld").rows[:60]
    truth = [render(Scene.from_dict(row.extra["scene"]), 64) for row in rows]
    run = _fake_run(tmp_path / "truth", rows, truth)
    stats = _by_question(TOYWORLD.compute(_context(run), metric_options(TOYWORLD, {"baseline_samples": "2"})))
    for question, stat in stats.items():
        overall = stat.overall
        if question == "size" and overall.n == 0:
            continue
        assert overall.method == "wilson" and overall.value == 1.0, (question, overall)
        assert overall == wilson(overall.n, overall.n) and overall.low < 1.0
        assert set(stat.groups) == {"category"}
        assert all(e.value == 1.0 for e in stat.groups["category"].values())
        assert sum(e.n for e in stat.groups["category"].values()) == overall.n
        assert stat.details["n_images"] == overall.n
    assert stats["count"].overall.n == sum(r.category == "Counting" for r in rows)
    assert set(stats["count"].groups["category"]) == {"Counting"}
    assert set(stats["all"].groups["category"]) == {"Colors", "Counting", "Positional", "Binding"}
    assert stats["all"].details["n_prompts"] == 60
    chance = stats["all"].details["baselines"]["random-scenes"]
    assert chance["samples_per_prompt"] == 2 and chance["scene_split"] == "any"
    assert Estimate.from_json(chance["overall"]).n == 120 and chance["overall"]["value"] < 0.1

    shuffled = truth[1:] + truth[:1]  # every image answers the wrong prompt
    run = _fake_run(tmp_path / "shuffled", rows, shuffled)
    low = _by_question(score_toyworld_images(run.records(), [run.image_path(r) for r in run.records()],
                                             baseline=False))
    assert low["all"].overall.value < 0.15 and low["colour"].overall.value < 0.6
    assert "baselines" not in low["all"].details


def test_random_scene_images_score_like_the_random_scenes_baseline(tmp_path):
    """A "model" that draws random scenes whatever the prompt is what the baseline simulates: its accuracy must
    agree with the baseline's within the two intervals."""
    rows = load_benchmark("toyworld").rows
    rng = random.Random("test:random-model")
    images = [render(sample_scene(rng, "any"), 48) for _ in rows for _ in range(3)]
    run = _fake_run(tmp_path, rows, images, samples=3)
    records = run.records()
    stats = _by_question(score_toyworld_images(records, [run.image_path(r) for r in records], baseline_samples=3))
    for question in ("colour", "shape", "binding", "position", "all"):
        model = stats[question].overall
        chance = Estimate.from_json(stats[question].details["baselines"]["random-scenes"]["overall"])
        assert model.n == chance.n
        assert model.low <= chance.high and chance.low <= model.high, (question, model, chance)
    assert 0.1 < stats["shape"].overall.value < 0.5 and stats["all"].overall.value < 0.05


def test_only_completed_images_are_scored(tmp_path):
    rows = load_benchmark("toyworld").rows[:6]
    images = [render(Scene.from_dict(row.extra["scene"]), 32) for row in rows for _ in range(2)]
    images[3] = None  # not generated yet
    run = _fake_run(tmp_path, rows, images, samples=2)
    stats = _by_question(TOYWORLD.compute(_context(run), metric_options(TOYWORLD, {"baseline": "false"})))
    assert stats["all"].overall.n == 11 and stats["all"].overall.value == 1.0
    assert stats["all"].details == {"n_prompts": 6, "n_images": 11}


def test_run_without_specs_is_a_user_error(tmp_path):
    from evalkit.benchmarks.registry import PromptRow

    rows = [PromptRow(0, "a cat", "Colors", {})]
    run = _fake_run(tmp_path, rows, [render(Scene((), "Colors"), 32)])
    with pytest.raises(EvalkitError, match="toy-world spec"):
        TOYWORLD.compute(_context(run), metric_options(TOYWORLD, {}))
    with pytest.raises(EvalkitError, match="no generated images"):
        score_toyworld_images([], [])


def test_wilson_interval_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for successes, trials in [(0, 10), (7, 10), (50, 200), (200, 200), (1, 3), (412, 800)]:
        low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
        estimate = wilson(successes, trials)
        assert estimate.value == successes / trials and estimate.n == trials and estimate.method == "wilson"
        assert estimate.low == pytest.approx(low, abs=1e-12) and estimate.high == pytest.approx(high, abs=1e-12)
    assert wilson(0, 0) == Estimate.empty()
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_random_scenes_baseline_is_chance_level():
    rows = load_benchmark("toyworld").rows
    pairs = [(row.category, row.extra["spec"]) for row in rows]
    answers = random_scene_answers(pairs, samples_per_prompt=2)
    assert len(answers) == 400
    shape = [a["shape"] for a in answers]
    assert 0.0 < sum(shape) / len(shape) < 0.6
    assert sum(a["all"] for a in answers) / len(answers) < 0.05
    # a text-blind model trained on the train split never draws a held-out combination
    train_only = random_scene_answers(pairs, samples_per_prompt=1, split="train")
    assert not any(a["binding"] for a in train_only)
    with pytest.raises(EvalkitError, match="split"):
        random_scene_answers(pairs, split="heldout")


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
