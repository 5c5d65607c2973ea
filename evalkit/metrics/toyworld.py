"""Toy-world alignment: read every image of a toy-world run back with the analyzer and check it against its
prompt's spec; accuracy per question (colour, shape, binding, size, count, position, all), overall and per
category, with 95% Wilson intervals (images are treated as independent trials).

``unconditional_baseline`` gives the chance level: the accuracy of random training-distribution scenes scored
against the same prompts, i.e. what a model that ignores the text would get.
"""

from __future__ import annotations

import random
from typing import Any, Iterable

from evalkit.errors import EvalkitError

QUESTIONS: tuple[str, ...] = ("colour", "shape", "binding", "size", "count", "position", "all")


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    from scipy.stats import binomtest

    if trials == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(ci.low), float(ci.high))


def _summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per question: accuracy, n (images that were asked it), 95% interval."""
    summary: dict[str, Any] = {}
    for question in QUESTIONS:
        answers = [r[question] for r in results if r.get(question) is not None]
        if not answers:
            continue
        correct = int(sum(bool(a) for a in answers))
        low, high = wilson_interval(correct, len(answers))
        summary[question] = {"accuracy": correct / len(answers), "n": len(answers), "ci95": [low, high]}
    return summary


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall and per-category summaries of per-image results (each carries its "category")."""
    categories = sorted({r["category"] for r in results})
    return {
        "n_images": len(results),
        "overall": _summarise(results),
        "per_category": {c: _summarise([r for r in results if r["category"] == c]) for c in categories},
    }


def _spec_of(record: Any) -> dict[str, Any]:
    spec = (record.extra or {}).get("spec")
    if not isinstance(spec, dict) or "groups" not in spec:
        raise EvalkitError(
            f"prompt {record.prompt_index} has no toy-world spec: the toyworld metric needs a run of the toyworld benchmark"
        )
    return spec


def score_toyworld(run: Any, details: bool = False, chance: bool = True) -> dict[str, Any]:
    """Score every completed image of ``run`` (an ``evalkit.runs.Run``).

    ``details`` adds per-image answers; ``chance`` adds the unconditional baseline for the run's prompts (overall
    and per-category accuracies only) under "chance", for reports to print beside the model.
    """
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    from evalkit.toyworld.analyzer import score

    records = run.completed_records()
    if not records:
        raise EvalkitError(f"run {run.path} has no generated images to score")
    results = []
    for record in tqdm(records, desc="toyworld analyzer", unit="img"):
        spec = _spec_of(record)
        try:
            with Image.open(run.image_path(record)) as image:
                answers = score(image.convert("RGB"), spec)
        except (OSError, UnidentifiedImageError) as error:
            raise EvalkitError(f"cannot read image {run.image_path(record)}: {error}") from None
        results.append(
            {"prompt_index": record.prompt_index, "sample": record.sample, "category": record.category, **answers}
        )
    summary = aggregate(results)
    summary["n_prompts"] = len({r["prompt_index"] for r in results})
    summary["ci_method"] = "wilson-95 over images"
    if chance:
        baseline = unconditional_baseline(run)
        summary["chance"] = {
            "overall": {q: s["accuracy"] for q, s in baseline["overall"].items()},
            "per_category": {c: {q: s["accuracy"] for q, s in stats.items()} for c, stats in baseline["per_category"].items()},
            "samples_per_prompt": baseline["samples_per_prompt"],
            "scene_split": baseline["scene_split"],
        }
    if details:
        summary["images"] = results
    return summary


def unconditional_baseline(
    prompts: Any, samples_per_prompt: int = 5, seed: int = 0, size: int = 64, split: str = "any"
) -> dict[str, Any]:
    """Accuracy of random scenes (rendered at ``size`` and analyzed) scored against each prompt: the chance level.

    ``split="any"`` draws every colour x shape combination; "train" mimics a text-blind model trained on the
    training split (which never draws held-out combinations, so its binding accuracy on held-out prompts is 0).

    ``prompts``: an ``evalkit.runs.Run``, or an iterable of (category, spec) pairs / dicts with those keys.
    """
    from evalkit.toyworld.analyzer import score
    from evalkit.toyworld.render import render_array
    from evalkit.toyworld.scenes import sample_scene

    pairs = _category_spec_pairs(prompts)
    if not pairs:
        raise EvalkitError("no toy-world prompts to compute a baseline for")
    rng = random.Random(f"toyworld:baseline:{seed}")
    results = []
    for category, spec in pairs:
        for _ in range(samples_per_prompt):
            answers = score(render_array(sample_scene(rng, split), size), spec)
            results.append({"category": category, **answers})
    summary = aggregate(results)
    summary["samples_per_prompt"] = samples_per_prompt
    summary["scene_split"] = split
    return summary


def _category_spec_pairs(prompts: Any) -> list[tuple[str, dict[str, Any]]]:
    if hasattr(prompts, "records"):
        seen: dict[int, tuple[str, dict[str, Any]]] = {}
        for record in prompts.records():
            seen.setdefault(record.prompt_index, (record.category, _spec_of(record)))
        return list(seen.values())
    pairs = []
    for item in prompts if isinstance(prompts, Iterable) else []:
        if isinstance(item, dict):
            pairs.append((item["category"], item["spec"]))
        else:
            category, spec = item
            pairs.append((category, spec))
    return pairs
