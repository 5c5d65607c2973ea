"""Position accuracy of an Imagen checkpoint split into one-object region prompts ("a red circle on the left") and
two-object relation prompts ("a red circle left of a blue square").

    python -m evalkit.experiments.position_breakdown [--checkpoint DIR] [--benchmark toyworld] [--stages 1]
        [--images-per-prompt 2] [--no-expert] -> reports/imagen/position_breakdown.md

The Positional prompts of the benchmark are generated through the run pipeline (a run directory under ``--runs``,
reused on a rerun) and scored by the toyworld metric, grouped by kind: how often the named colours are found
(the ``colour`` question), how often the region / relation holds (``position``), how often it holds among the
images whose colours were found (chance there is about 1/3 for a region, 1/4 for a relation), and the
random-scenes baseline of the same prompts.

A second table splits the relation images whose two colours were found by what the model drew: the named
relation, its reverse (the objects on the right axis in the wrong order: "left of" drawn as "right of"), or
neither (the other axis). A model that reads the relation word's axis but not which colour is its subject lands
at half and half between the first two.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evalkit.cli.args import positive_int
from evalkit.experiments.common import REPORTS_DIR, run_as_script, shipped_checkpoint, write_report
from evalkit.experiments.runs import RUNS_DIR, cell, generate_and_score, sub_cascade

KINDS = (("region", "~1/3"), ("relation", "1/4"))
REVERSE = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}
ORDERS = ("as named", "reversed", "other axis")


def relation_order(records, image_paths) -> dict[str, dict[str, int]]:
    """Per relation word, how many images with both named colours drew it as named / reversed / on the other axis."""
    from evalkit.images import open_rgb
    from evalkit.metrics.toyworld import spec_of
    from evalkit.toyworld.analyzer import analyze, score_objects

    counts: dict[str, dict[str, int]] = {}
    for record, path in zip(records, image_paths):
        spec = spec_of(record)
        relation = spec.get("relation")
        if not relation:
            continue
        found = analyze(open_rgb(path))
        verdict = score_objects(found, spec)
        if not verdict["colour"]:
            continue
        reverse = score_objects(found, {**spec, "relation": {**relation, "rel": REVERSE[relation["rel"]]}})
        order = "as named" if verdict["position"] else "reversed" if reverse["position"] else "other axis"
        row = counts.setdefault(relation["rel"], dict.fromkeys(ORDERS, 0))
        row[order] += 1
    return counts


def order_lines(counts: dict[str, dict[str, int]]) -> list[str]:
    total = {order: sum(row[order] for row in counts.values()) for order in ORDERS}
    lines = []
    for name, row in [*sorted(counts.items()), ("all relations", total)]:
        n = sum(row.values())
        lines.append(f"| {name} | {n} | " + " | ".join(f"{row[o]} ({row[o] / n:.0%})" if n else "-" for o in ORDERS)
                     + " |")
    return lines


def position_kind(answers) -> str | None:
    """"region" or "relation" for a prompt that asks a position, else None (left out)."""
    spec = answers["spec"]
    return "relation" if spec.get("relation") else "region" if spec.get("region") else None


def breakdown(cascade, checkpoint: str, benchmark, images_per_prompt: int, runs: Path) -> tuple[list[str], object]:
    from evalkit.metrics.toyworld import accuracy, grouped_accuracy, random_scene_answers

    rows = [row for row in benchmark.rows if row.extra["spec"].get("relation") or row.extra["spec"].get("region")]
    scored = generate_and_score(cascade, checkpoint, benchmark, rows, runs, images_per_prompt=images_per_prompt,
                                groups={"kind": position_kind})
    answers = scored.answers
    chance = random_scene_answers([(row.category, row.extra["spec"]) for row in rows], samples_per_prompt=5)
    chance_by_kind = grouped_accuracy(chance, "position", position_kind)
    lines = []
    for kind, conditional_chance in KINDS:
        of_kind = [a for a in answers if position_kind(a) == kind]
        found = [a for a in of_kind if a["colour"]]
        prompts = len({a["prompt_index"] for a in of_kind})
        lines.append(f"| {kind} | {prompts} | {cell(scored.stats['colour'].groups['kind'][kind])} | "
                     f"{cell(scored.stats['position'].groups['kind'][kind])} | {cell(accuracy(found, 'position'))} | "
                     f"{conditional_chance} | {cell(chance_by_kind[kind])} |")
    return lines, scored


def main(argv: list[str] | None = None) -> int:
    from evalkit.adapters.imagen import checkpoint_label
    from evalkit.benchmarks.registry import load_benchmark
    from evalkit.imagen.cascade import ImagenCascade

    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.position_breakdown",
                                     description="Position accuracy by kind: region vs relation prompts.")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="Imagen checkpoint folder (default: the shipped one)")
    parser.add_argument("--benchmark", default="toyworld", choices=["toyworld", "toyworld-validation"])
    parser.add_argument("--stages", type=positive_int, default=1, help="cascade stages to run (1: the base, 32 px)")
    parser.add_argument("--images-per-prompt", type=positive_int, default=2)
    parser.add_argument("--no-expert", action="store_true", help="the base alone, without its high-noise expert")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")
    parser.add_argument("--runs", type=Path, default=RUNS_DIR / "position_breakdown",
                        help="root of its run directories")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "position_breakdown.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or shipped_checkpoint()
    cascade = ImagenCascade.from_pretrained(checkpoint, experts=not args.no_expert)
    cascade = sub_cascade(cascade, min(args.stages, len(cascade.stages)))
    benchmark = load_benchmark(args.benchmark)
    flags = " --no-expert" if args.no_expert else ""
    lines, scored = breakdown(cascade, checkpoint_label(checkpoint), benchmark, args.images_per_prompt, args.runs)
    records = scored.run.completed_records()
    order = order_lines(relation_order(records, [scored.run.image_path(r) for r in records]))
    text = "\n".join([
        f"# Position accuracy by kind ({len(cascade.stages)}-stage cascade, {cascade.image_size} px, "
        f"Positional prompts of `{benchmark.name}`)", "",
        f"`python -m evalkit.experiments.position_breakdown --benchmark {benchmark.name} --stages {args.stages} "
        f"--images-per-prompt {args.images_per_prompt}{flags}` (checkpoint `{Path(checkpoint).name}`; run "
        f"`{scored.run.run_id}`). Shares of images with 95% Wilson intervals and N.", "",
        "| kind | prompts | named colours found | position holds | holds, colours found | chance given colours | "
        "random scenes |", "| --- | --- | --- | --- | --- | --- | --- |", *lines, "",
        "Relation images with both named colours found, by what was drawn:", "",
        "| relation | images | as named | reversed | other axis |", "| --- | --- | --- | --- | --- |", *order, ""])
    write_report(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    run_as_script(main)
