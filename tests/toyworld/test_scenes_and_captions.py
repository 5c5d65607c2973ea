"""Scenes, captions, specs and training examples: splits, agreement, determinism, category mix."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from evalkit.errors import EvalkitError
from evalkit.toyworld import palette
from evalkit.toyworld.captions import caption, scene_spec
from evalkit.toyworld.data import HELDOUT_SIZE, batch_arrays, example, toy_prompts
from evalkit.toyworld.render import render_array
from evalkit.toyworld.scenes import CATEGORIES, CATEGORY_WEIGHTS, Scene, category_weights, sample_scene

COLOUR_WORDS = set(palette.COLOURS)
SHAPE_WORDS = {"circle": "circle", "circles": "circle", "square": "square", "squares": "square",
               "triangle": "triangle", "triangles": "triangle", "cross": "cross", "crosses": "cross"}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4, "a": 1, "an": 1, "single": 1}


def test_heldout_combos_never_in_train_and_always_in_heldout():
    rng = random.Random(1)
    for _ in range(5000):
        scene = sample_scene(rng, "train")
        assert not {(o.colour, o.shape) for o in scene.objects} & palette.HELDOUT_COMBOS
    for _ in range(1000):
        scene = sample_scene(rng, "heldout")
        assert (scene.objects[0].colour, scene.objects[0].shape) in palette.HELDOUT_COMBOS


def test_categories_balanced_with_counting_and_position_well_represented():
    rng = random.Random(2)
    counts = {c: 0 for c in CATEGORIES}
    for _ in range(4000):
        counts[sample_scene(rng).category] += 1
    assert all(counts[c] > 600 for c in CATEGORIES), counts
    assert counts["Counting"] > 1000 and counts["Positional"] > 1000, counts


def test_objects_stay_inside_the_image_and_never_share_a_cell():
    rng = np.random.default_rng(3)  # numpy Generators work as well as random.Random
    for _ in range(2000):
        scene = sample_scene(rng)
        assert 1 <= len(scene.objects) <= 4
        assert len({o.cell for o in scene.objects}) == len(scene.objects)
        for o in scene.objects:
            half = palette.SIZES[o.size] / 2
            assert half <= o.position[0] <= 1 - half and half <= o.position[1] <= 1 - half


def _read_caption(text: str) -> dict:
    """An independent reading of a caption: colour words, shape words, numbers, relation/region words."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {
        "colours": {w for w in words if w in COLOUR_WORDS},
        "shapes": {SHAPE_WORDS[w] for w in words if w in SHAPE_WORDS},
        "sizes": {w for w in words if w in ("small", "large")},
        "words": words,
    }


RELATION_WORDS = {"left_of": {"left"}, "right_of": {"right"}, "above": {"above", "over", "top"},
                  "below": {"below", "under", "beneath"}}


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_captions_agree_with_specs(split):
    rng = random.Random(4)
    for _ in range(3000):
        scene = sample_scene(rng, split)
        text = caption(scene, rng)
        spec = scene_spec(scene)
        read = _read_caption(text)
        assert read["colours"] == {g["colour"] for g in spec["groups"]}, text
        assert read["shapes"] == {g["shape"] for g in spec["groups"]}, text
        assert read["sizes"] == {g["size"] for g in spec["groups"] if g["size"]}, text
        assert {o.colour for o in scene.objects} == read["colours"]
        if spec["exact_count"]:
            stated = [NUMBER_WORDS[w] for w in read["words"] if w in NUMBER_WORDS]
            assert sorted(stated) == sorted(g["count"] for g in spec["groups"]), text
            assert sum(stated) == len(scene.objects)
        if spec["relation"]:
            assert RELATION_WORDS[spec["relation"]["rel"]] & set(read["words"]), text
            first = text.split()[:4]  # the subject (group a) is named first
            assert spec["groups"][0]["colour"] in first, text
        if spec["region"]:
            assert spec["region"]["region"] in read["words"], text
        json.dumps(spec)  # plain JSON


def test_scene_round_trips_through_json():
    rng = random.Random(5)
    for _ in range(200):
        scene = sample_scene(rng)
        assert Scene.from_dict(json.loads(json.dumps(scene.to_dict()))) == scene


def test_examples_and_prompt_sets_are_deterministic_and_disjoint():
    for seed in (0, 1, 99):
        a, b = example(seed, 32), example(seed, 32)
        assert a[1:] == b[1:] and np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert example(0, 32)[1] != example(1, 32)[1] or example(0, 32)[2] != example(1, 32)[2]
    images, captions, categories = batch_arrays([0, 1, 99], 32)
    assert captions[2] == example(99, 32)[1] and np.array_equal(images[2], np.asarray(example(99, 32)[0]))
    assert toy_prompts("heldout", 50) == toy_prompts("heldout", 50) == toy_prompts("heldout")[:50]
    assert toy_prompts("validation", 50) == toy_prompts("validation")[:50]
    prompts, validation = toy_prompts("heldout", HELDOUT_SIZE), toy_prompts("validation", 300)
    assert len({p["prompt"] for p in prompts}) == 200 and len({p["prompt"] for p in validation}) == 300
    assert {p["category"] for p in prompts} == {p["category"] for p in validation} == set(CATEGORIES)
    assert not {p["prompt"] for p in prompts} & {p["prompt"] for p in validation}
    with pytest.raises(EvalkitError, match="prompt set"):
        toy_prompts("train")


def test_render_is_pure_palette_and_background():
    rng = random.Random(6)
    allowed = {tuple(c) for c in palette.COLOURS.values()} | {palette.BACKGROUND}
    for size in (32, 64):
        for _ in range(50):
            pixels = render_array(sample_scene(rng), size).reshape(-1, 3)
            assert {tuple(p) for p in np.unique(pixels, axis=0)} <= allowed


def test_palette_is_well_separated_and_background_unused():
    colours = np.array(list(palette.COLOURS.values()), dtype=float)
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=-1) + np.eye(len(colours)) * 1e9
    assert distances.min() > 100
    assert palette.BACKGROUND not in palette.COLOURS.values()


def test_bad_inputs_are_user_errors():
    with pytest.raises(EvalkitError):
        sample_scene(random.Random(0), "test")
    with pytest.raises(EvalkitError):
        sample_scene(random.Random(0), category="Nonsense")
    with pytest.raises(EvalkitError):
        sample_scene(42)
    with pytest.raises(EvalkitError):
        render_array(sample_scene(random.Random(0)), 4)


def test_category_mix_sets_what_training_sees():
    _, _, categories = batch_arrays(range(200), 32, weights=category_weights({"Positional": 1.0}))
    assert set(categories) == {"Positional"}
    _, _, categories = batch_arrays(range(400), 32, weights=category_weights({"Colors": 1, "Counting": 3}))
    assert set(categories) == {"Colors", "Counting"} and categories.count("Counting") > 2 * categories.count("Colors")
    assert category_weights(None) == CATEGORY_WEIGHTS
    for bad in ({"Shapes": 1.0}, {"Colors": -1.0}, {"Colors": 0.0}):
        with pytest.raises(EvalkitError):
            category_weights(bad)
