"""`evalkit train imagen --eval-every N`: toy-world accuracy of the stage being trained, measured the way a user
measures a model, so a training curve and `evalkit score` never disagree.

At each evaluated step, right after the step's checkpoint files are saved, the base stage is loaded from them as
``evalkit run --model-path <out>`` loads it (float16 weights, with the expert saved beside it, if any; an expert
trained into a folder without a base is paired with the base from --init-from), wrapped in the ``imagen``
adapter and generated through the run pipeline (hashed per-image seeds, the same ones at every step) into a run
directory ``<out>/train/<stage>/eval/step-NNNNNN/<run-id>/``, on a toy-world benchmark:
``toyworld-validation`` by default (for choosing checkpoints), ``toyworld`` (held-out) only to report. The run is
scored with the toyworld metric, and one row per step is appended to ``<out>/train/<stage>/eval-<benchmark>.csv``:
each question's accuracy, its 95% Wilson interval and N. The same numbers come from

    evalkit run --model imagen --model-path <out> --opt stages=1 --benchmark toyworld-validation \\
        --limit <eval-prompts> --images-per-prompt <eval-images-per-prompt>
    evalkit score <run> --metrics toyworld

with the checkpoint folder as it was at that step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from evalkit import atomic
from evalkit.errors import EvalkitError
from evalkit.metrics.toyworld import QUESTIONS

EVAL_BENCHMARKS = {"validation": "toyworld-validation", "heldout": "toyworld"}
COLUMNS = ("step", "benchmark", "n_prompts", "images_per_prompt", "run",
           *[f"{q}{suffix}" for q in QUESTIONS for suffix in ("", "_low", "_high", "_n")])


def saved_cascade(trainer, base_folder: Path | None = None):
    """The one-stage cascade the trainer's saved files make, and how a run names it: (cascade, checkpoint).

    ``base_folder``: where the base of an expert being trained lives when ``trainer.out`` has none."""
    from evalkit.adapters.imagen import DEFAULT_PRECISION, checkpoint_label
    from evalkit.imagen.cascade import ImagenCascade, Stage, resolve_precision

    precision = resolve_precision(DEFAULT_PRECISION, trainer.device)  # what `evalkit run` would sample in

    out = Path(trainer.config.out)
    if (out / "base.json").is_file():
        cascade = ImagenCascade.from_pretrained(out, device=trainer.device, num_stages=1,
                                                text_encoder=trainer.text_encoder, precision=precision)
        return cascade, checkpoint_label(out)
    if base_folder is None:
        raise EvalkitError(f"--eval-every: {out} has no base stage to score")
    base = Stage.load(base_folder, "base", trainer.device, experts=False)
    base.attach_expert(Stage.load(out, trainer.name, trainer.device))
    cascade = ImagenCascade([base], text_encoder=trainer.text_encoder, device=trainer.device, precision=precision)
    return cascade, f"{checkpoint_label(base_folder)} + {trainer.name} of {checkpoint_label(out)}"


def evaluate_cascade(cascade, checkpoint: str, benchmark_name: str, out_root: Path, n_prompts: int,
                     images_per_prompt: int = 1, seed: int = 0, batch_size: int = 50):
    """Generate ``n_prompts`` of the benchmark (``select_subset``, as ``--limit`` does) with ``cascade`` into a run
    under ``out_root`` and score it with the toyworld metric: (run, stats)."""
    from evalkit.adapters.imagen import ImagenAdapter
    from evalkit.benchmarks.registry import load_benchmark, select_subset
    from evalkit.metrics.toyworld import score_toyworld_images
    from evalkit.runs.generate import generate_run

    benchmark = load_benchmark(benchmark_name)
    rows = select_subset(benchmark.rows, n_prompts)
    adapter = ImagenAdapter(cascade, checkpoint)
    run = generate_run(adapter, benchmark, out_root, rows, images_per_prompt, seed, batch_size=batch_size)
    records = run.completed_records()
    stats = score_toyworld_images(records, [run.image_path(r) for r in records], baseline=False)
    return run, stats


def csv_row(step: int, benchmark: str, n_prompts: int, images_per_prompt: int, run_path: Path,
            stats: Sequence[Any]) -> list[str]:
    by_name = {stat.name: stat.overall for stat in stats}
    cells = [str(step), benchmark, str(n_prompts), str(images_per_prompt), str(run_path)]
    for question in QUESTIONS:
        estimate = by_name[f"toyworld.{question}"]
        cells += [_number(estimate.value), _number(estimate.low), _number(estimate.high), str(estimate.n)]
    return cells


def _number(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"  # empty: no prompt of the subset asks that question


def append_csv_row(path: Path, cells: Sequence[str]) -> None:
    """Append one row (the header first for a new file), rewriting the file atomically."""
    header = ",".join(COLUMNS)
    text = path.read_text(encoding="utf-8") if path.is_file() else header + "\n"
    if text.split("\n", 1)[0] != header:
        raise EvalkitError(f"{path} has other columns than `evalkit train --eval-every` writes; move it away")
    atomic.write_text(path, text + ",".join(cells) + "\n")


def eval_hook(args, base_folder: Path | None = None):
    """The ``on_checkpoint`` callback of ``evalkit train --eval-every N`` (``base_folder``: see ``saved_cascade``)."""
    benchmark = EVAL_BENCHMARKS[args.eval_split]

    def hook(trainer) -> None:
        if trainer.step % args.eval_every and trainer.step not in (trainer.config.steps, trainer.config.stop_at):
            return
        cascade, checkpoint = saved_cascade(trainer, base_folder)
        out_root = trainer.train_dir / "eval" / f"step-{trainer.step:06d}"
        run, stats = evaluate_cascade(cascade, checkpoint, benchmark, out_root, args.eval_prompts,
                                      args.eval_images_per_prompt)
        n_prompts = len({r.prompt_index for r in run.completed_records()})
        append_csv_row(trainer.train_dir / f"eval-{benchmark}.csv",
                       csv_row(trainer.step, benchmark, n_prompts, args.eval_images_per_prompt, run.path, stats))
        shown = {s.name.removeprefix("toyworld."): s.overall for s in stats}
        print(f"step {trainer.step} ({benchmark}, {n_prompts} prompts): " + "; ".join(
            f"{q} {shown[q].value:.1%} [{shown[q].low:.1%}, {shown[q].high:.1%}]"
            for q in ("colour", "count", "position", "all") if shown[q].n), flush=True)

    return hook
