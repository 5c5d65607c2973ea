"""Toy-world alignment, the one scorer of toy-world runs: read every image back with the analyzer and check it
against its prompt's spec. One ``Stat`` per question (colour, shape, binding, size, count, position, all): the
share of images that answer it right, overall and per category, each with a 95% Wilson interval.

For ``k`` right answers out of ``n`` images asked a question, with ``p = k / n`` and ``z = 1.96``, the Wilson score
interval is

    (p + z^2 / 2n  -/+  z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n),

which, unlike ``p -/+ z sqrt(p (1 - p) / n)``, stays inside [0, 1] and is not empty at ``p = 0`` or ``1``. Images
are treated as independent trials; the samples of one prompt are correlated, so with several images per prompt
the interval is somewhat too narrow.

Baseline beside the model (in each Stat's ``details["baselines"]``):
  ``random-scenes``  no model: random toy-world scenes, rendered and analyzed, scored against the same prompts
                     (``baseline_samples`` per prompt): what an image generator that ignores the text gets.
                     ``baseline_split`` "any" draws every colour x shape combination; "train" only those of the
                     training split (a text-blind model trained on it never draws a held-out combination, so its
                     binding accuracy on held-out prompts is 0).
The other baseline, ``guidance-0`` (the same model with the base stage's guidance weight 0, i.e. its unconditional
prediction: the layout and colours drawn without the text), is a separate run scored the same way:
``evalkit run --model imagen --benchmark toyworld --opt guidance=0``.

Entry points: ``TOYWORLD`` (the ``Metric`` that ``evalkit score --metrics toyworld`` computes) and
``score_toyworld_images(records, image_paths)`` for callers that hold a run's records and image files but no
scoring context (``evalkit train``'s periodic evaluation, ``evalkit.experiments``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from evalkit.errors import EvalkitError
from evalkit.estimate import Estimate
from evalkit.metrics.base import Needs, Option, Stat, parse_bool, parse_positive_int

QUESTIONS: tuple[str, ...] = ("colour", "shape", "binding", "size", "count", "position", "all")
STAT_NAMES: tuple[str, ...] = tuple(f"toyworld.{q}" for q in QUESTIONS)
BASELINE_SPLITS: tuple[str, ...] = ("any", "train")
BASELINE_SIZE = 64  # pixels the random scenes are rendered at (the analyzer reads any size >= 8)

Answers = dict[str, Any]  # one image: prompt_index, category, spec and the analyzer's verdict per question
GroupKey = Callable[[Answers], "str | None"]


def wilson(successes: int, trials: int) -> Estimate:
    """The share ``successes / trials`` with its 95% Wilson score interval (``Estimate.empty()`` for no trials)."""
    from scipy.stats import binomtest

    if trials == 0:
        return Estimate.empty()
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    ci = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return Estimate(successes / trials, float(ci.low), float(ci.high), trials, "wilson")


def spec_of(record: Any) -> dict[str, Any]:
    """The toy-world spec stored with a run's prompt row (``ImageRecord.extra["spec"]``)."""
    spec = (record.extra or {}).get("spec") if isinstance(record.extra, dict) else None
    if not isinstance(spec, dict) or "groups" not in spec:
        raise EvalkitError(f"prompt {record.prompt_index} has no toy-world spec: the toyworld metric needs a run of "
                           f"a toy-world benchmark (toyworld, toyworld-validation)")
    return spec


def image_answers(records: Sequence[Any], image_paths: Sequence[Path], progress: bool = False) -> list[Answers]:
    """The analyzer's verdict on each image (``records[i]`` describes ``image_paths[i]``)."""
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    from evalkit.toyworld.analyzer import score

    if len(records) != len(image_paths):
        raise EvalkitError(f"{len(records)} records for {len(image_paths)} images")
    out = []
    for record, path in tqdm(list(zip(records, image_paths)), desc="toyworld analyzer", unit="img",
                             disable=not progress):
        spec = spec_of(record)
        try:
            with Image.open(path) as image:
                verdict = score(image.convert("RGB"), spec)
        except (OSError, UnidentifiedImageError) as error:
            raise EvalkitError(f"cannot read image {path}: {error}") from None
        out.append({"prompt_index": record.prompt_index, "sample": record.sample, "category": record.category,
                    "spec": spec, **verdict})
    return out


def random_scene_answers(prompts: Iterable[tuple[str, dict[str, Any]]], samples_per_prompt: int = 5, seed: int = 0,
                         split: str = "any") -> list[Answers]:
    """The ``random-scenes`` baseline: ``samples_per_prompt`` random scenes of ``split`` scored against each
    (category, spec) prompt."""
    from evalkit.toyworld.analyzer import score
    from evalkit.toyworld.render import render_array
    from evalkit.toyworld.scenes import sample_scene

    if split not in BASELINE_SPLITS:
        raise EvalkitError(f"random-scenes baseline: split must be one of {', '.join(BASELINE_SPLITS)}, got {split!r}")
    rng = random.Random(f"toyworld:baseline:{seed}")
    out = []
    for index, (category, spec) in enumerate(prompts):
        for _ in range(samples_per_prompt):
            verdict = score(render_array(sample_scene(rng, split), BASELINE_SIZE), spec)
            out.append({"prompt_index": index, "category": category, "spec": spec, **verdict})
    if not out:
        raise EvalkitError("no toy-world prompts to compute a baseline for")
    return out


def accuracy(answers: Sequence[Answers], question: str) -> Estimate:
    """Share of the images asked ``question`` that answer it right (images not asked it are left out)."""
    asked = [bool(a[question]) for a in answers if a.get(question) is not None]
    return wilson(sum(asked), len(asked))


def grouped_accuracy(answers: Sequence[Answers], question: str, key: GroupKey) -> dict[str, Estimate]:
    """``accuracy`` per group label (``key(answers) -> label``, None leaves an image out), for groups asked it."""
    labels = sorted({label for a in answers if (label := key(a)) is not None})
    found = {label: accuracy([a for a in answers if key(a) == label], question) for label in labels}
    return {label: estimate for label, estimate in found.items() if estimate.n}


def by_category(answers: Answers) -> str:
    return answers["category"]


def stats_of(answers: Sequence[Answers], groups: Mapping[str, GroupKey] | None = None,
             baseline: Sequence[Answers] | None = None, baseline_info: Mapping[str, Any] | None = None) -> list[Stat]:
    """One ``Stat`` per question from per-image answers; ``groups`` default to {"category": by_category}."""
    groups = {"category": by_category} if groups is None else groups
    stats = []
    for question, name in zip(QUESTIONS, STAT_NAMES):
        asked = [a for a in answers if a.get(question) is not None]
        details: dict[str, Any] = {"n_prompts": len({a["prompt_index"] for a in asked}), "n_images": len(asked)}
        if baseline is not None:
            details["baselines"] = {"random-scenes": {
                "overall": accuracy(baseline, question).to_json(),
                "category": {k: e.to_json() for k, e in grouped_accuracy(baseline, question, by_category).items()},
                **(baseline_info or {})}}
        stats.append(Stat(name, accuracy(answers, question),
                          {g: grouped_accuracy(answers, question, key) for g, key in groups.items()},
                          details=details))
    return stats


def score_toyworld_images(records: Sequence[Any], image_paths: Sequence[Path], baseline: bool = True,
                          baseline_samples: int = 5, baseline_split: str = "any", progress: bool = False,
                          groups: Mapping[str, GroupKey] | None = None) -> list[Stat]:
    """Score images of toy-world prompts (``records``: a run's ``ImageRecord``s, ``image_paths`` their files):
    one ``Stat`` per question (``STAT_NAMES``), with the random-scenes baseline of the same prompts when asked."""
    if not records:
        raise EvalkitError("no generated images to score")
    return _stats_with_baseline(records, image_answers(records, image_paths, progress), baseline, baseline_samples,
                                baseline_split, groups)


def _stats_with_baseline(records: Sequence[Any], answers: Sequence[Answers], baseline: bool, samples: int,
                         split: str, groups: Mapping[str, GroupKey] | None = None) -> list[Stat]:
    if not baseline:
        return stats_of(answers, groups)
    prompts: dict[int, tuple[str, dict[str, Any]]] = {}
    for record in records:
        prompts.setdefault(record.prompt_index, (record.category, spec_of(record)))
    reference = random_scene_answers([prompts[i] for i in sorted(prompts)], samples, split=split)
    return stats_of(answers, groups, reference, {"samples_per_prompt": samples, "scene_split": split})


class ToyworldMetric:
    """The ``toyworld`` metric (see the module docstring)."""

    name = "toyworld"
    higher_is_better = True
    needs = Needs(toyworld=True, prompts=True)
    description = "exact toy-world alignment: share of images whose analyzer reading answers each question right"
    stats = STAT_NAMES
    options = {
        "baseline": Option(True, parse_bool, "true/false: add the random-scenes baseline of the same prompts"),
        "baseline_samples": Option(5, parse_positive_int, "random scenes per prompt for the baseline (>= 1)"),
        "baseline_split": Option("any", str, "scenes of every colour x shape combination (any) or of the training "
                                 "split only (train)", choices=BASELINE_SPLITS),
    }

    def compute(self, ctx: Any, options: Mapping[str, Any]) -> list[Stat]:
        if ctx.records is None:
            raise EvalkitError("the toyworld metric needs a run of a toy-world benchmark (its prompts carry the "
                               "specs the analyzer checks), not a plain image folder")
        return score_toyworld_images(ctx.records, ctx.images, options["baseline"], options["baseline_samples"],
                                     options["baseline_split"], progress=ctx.progress)


TOYWORLD = ToyworldMetric()
