"""Toy-world alignment, the one scorer of toy-world runs: read every image back with the analyzer and check it
against its prompt's spec. One ``Stat`` per question (colour, shape, binding, size, count, position, all): the
share of images that answer it right, overall and per category, each with a 95% Wilson interval.

For ``k`` right answers out of ``n`` images asked a question, with ``p = k / n`` and ``z = 1.96``, the Wilson score
interval is

    (p + z^2 / 2n  -/+  z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n),

which, unlike ``p -/+ z sqrt(p (1 - p) / n)``, stays inside [0, 1] and is not empty at ``p = 0`` or ``1``. Images
are treated as independent trials; the samples of one prompt are correlated, so with several images per prompt
the interval is somewhat too narrow.

With ``--opt toyworld.bootstrap=B`` the overall interval is instead a percentile bootstrap over prompts (the unit
that is really independent): replicate i is sum(right) / sum(asked) over the prompts of draw i
(evalkit.metrics.bootstrap.prompt_draws). The replicates are stored like every metric's (details.bootstrap, with
the prompts hash and seed), so the regression gate pairs two runs over the same prompts and seeds: the paired
difference cancels what the runs share (how hard each prompt is) and is far tighter than two separate intervals.

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

import numpy as np

from evalkit.errors import EvalkitError
from evalkit.estimate import Estimate
from evalkit.metrics.base import Needs, Option, Stat, parse_bool, parse_non_negative_int, parse_positive_int

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
    from tqdm import tqdm

    from evalkit.images import open_rgb

    from evalkit.toyworld.analyzer import score

    if len(records) != len(image_paths):
        raise EvalkitError(f"{len(records)} records for {len(image_paths)} images")
    out = []
    for record, path in tqdm(list(zip(records, image_paths)), desc="toyworld analyzer", unit="img",
                             disable=not progress):
        spec = spec_of(record)
        verdict = score(open_rgb(path), spec)  # an unreadable file: UnreadableImage, naming it
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


def bootstrap_accuracy(answers: Sequence[Answers], question: str, resamples: int, seed: int) -> dict[str, Any] | None:
    """Replicates of ``accuracy`` over prompts resampled with replacement (all prompts of the run are drawn, so
    the draw is the one every metric of a run over these prompts makes). None when a draw holds no image asked
    the question (the ratio has no value there)."""
    from evalkit.metrics.bootstrap import prompt_draws, prompts_hash

    keys = [a["prompt_index"] for a in answers]
    distinct, draws = prompt_draws(keys, resamples, seed)
    position = {k: i for i, k in enumerate(distinct.tolist())}
    asked, right = np.zeros(len(distinct)), np.zeros(len(distinct))
    for a in answers:
        if a.get(question) is not None:
            asked[position[a["prompt_index"]]] += 1
            right[position[a["prompt_index"]]] += bool(a[question])
    totals = asked[draws].sum(axis=1)
    if not totals.all():
        return None
    replicates = (right[draws].sum(axis=1) / totals).tolist()
    return {"unit": "prompt", "resamples": resamples, "seed": seed, "prompts_hash": prompts_hash(keys),
            "replicates": replicates}


def _overall(answers: Sequence[Answers], question: str, bootstrap: dict[str, Any] | None) -> Estimate:
    plain = accuracy(answers, question)
    if bootstrap is None:
        return plain
    from evalkit.metrics.bootstrap import percentile_interval

    low, high = percentile_interval(bootstrap["replicates"])
    return Estimate(plain.value, low, high, plain.n, "bootstrap-prompts")


def stats_of(answers: Sequence[Answers], groups: Mapping[str, GroupKey] | None = None,
             baseline: Sequence[Answers] | None = None, baseline_info: Mapping[str, Any] | None = None,
             bootstrap: int = 0, seed: int = 0) -> list[Stat]:
    """One ``Stat`` per question from per-image answers; ``groups`` default to {"category": by_category}; with
    ``bootstrap`` > 0 the overall interval comes from that many resamples over prompts (see the module docstring)."""
    groups = {"category": by_category} if groups is None else groups
    stats = []
    for question, name in zip(QUESTIONS, STAT_NAMES):
        asked = [a for a in answers if a.get(question) is not None]
        details: dict[str, Any] = {"n_prompts": len({a["prompt_index"] for a in asked}), "n_images": len(asked)}
        replicates = bootstrap_accuracy(answers, question, bootstrap, seed) if bootstrap and asked else None
        if replicates is not None:
            details["bootstrap"] = replicates
        if baseline is not None:
            details["baselines"] = {"random-scenes": {
                "overall": accuracy(baseline, question).to_json(),
                "category": {k: e.to_json() for k, e in grouped_accuracy(baseline, question, by_category).items()},
                **(baseline_info or {})}}
        stats.append(Stat(name, _overall(answers, question, replicates),
                          {g: grouped_accuracy(answers, question, key) for g, key in groups.items()},
                          details=details))
    return stats


def score_toyworld_images(records: Sequence[Any], image_paths: Sequence[Path], baseline: bool = True,
                          baseline_samples: int = 5, baseline_split: str = "any", progress: bool = False,
                          groups: Mapping[str, GroupKey] | None = None, bootstrap: int = 0,
                          seed: int = 0) -> list[Stat]:
    """Score images of toy-world prompts (``records``: a run's ``ImageRecord``s, ``image_paths`` their files):
    one ``Stat`` per question (``STAT_NAMES``), with the random-scenes baseline of the same prompts when asked."""
    if not records:
        raise EvalkitError("no generated images to score")
    return _stats_with_baseline(records, image_answers(records, image_paths, progress), baseline, baseline_samples,
                                baseline_split, groups, bootstrap, seed)


def _stats_with_baseline(records: Sequence[Any], answers: Sequence[Answers], baseline: bool, samples: int,
                         split: str, groups: Mapping[str, GroupKey] | None = None, bootstrap: int = 0,
                         seed: int = 0) -> list[Stat]:
    if not baseline:
        return stats_of(answers, groups, bootstrap=bootstrap, seed=seed)
    prompts: dict[int, tuple[str, dict[str, Any]]] = {}
    for record in records:
        prompts.setdefault(record.prompt_index, (record.category, spec_of(record)))
    reference = random_scene_answers([prompts[i] for i in sorted(prompts)], samples, split=split)
    return stats_of(answers, groups, reference, {"samples_per_prompt": samples, "scene_split": split}, bootstrap, seed)


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
        "bootstrap": Option(0, parse_non_negative_int, "replicates of a bootstrap over prompts for the overall 95% "
                            "interval, stored so the regression gate can pair two runs (0: Wilson intervals)"),
    }

    def compute(self, ctx: Any, options: Mapping[str, Any]) -> list[Stat]:
        if ctx.records is None:
            raise EvalkitError("the toyworld metric needs a run of a toy-world benchmark (its prompts carry the "
                               "specs the analyzer checks), not a plain image folder")
        return score_toyworld_images(ctx.records, ctx.images, options["baseline"], options["baseline_samples"],
                                     options["baseline_split"], progress=ctx.progress,
                                     bootstrap=options["bootstrap"],
                                     seed=ctx.seed if options["bootstrap"] else 0)


TOYWORLD = ToyworldMetric()
