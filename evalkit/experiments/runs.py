"""What the toy-world experiments share: a cascade with changed sampling settings generated through the run
pipeline (``evalkit.runs.generate``) and scored by the one toy-world scorer (``evalkit.metrics.toyworld``), so
every number in an experiment's report is one ``evalkit run`` + ``evalkit score --metrics toyworld`` would give
for the same settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.estimate import Estimate

# Relative to the working directory, like reports/: run directories of the experiments (reused on a rerun).
RUNS_DIR = Path("runs") / "experiments"


@dataclass
class ScoredRun:
    run: Any  # evalkit.runs.store.Run
    stats: dict[str, Any]  # question -> Stat
    answers: list[dict[str, Any]]  # the analyzer's verdict per image (evalkit.metrics.toyworld.image_answers)
    seconds: float  # generation time in this call (0 when every image was already there)
    generated: int  # images generated in this call

    def estimate(self, question: str) -> Estimate:
        return self.stats[question].overall


def sub_cascade(cascade, stages: int):
    """The first ``stages`` stages of a loaded cascade, sharing its models and text encoder."""
    from evalkit.imagen.cascade import ImagenCascade

    if stages == len(cascade.stages):
        return cascade
    return ImagenCascade(cascade.stages[:stages], text_encoder=cascade.text_encoder, device=cascade.device)


def generate_and_score(cascade, checkpoint: str, benchmark, rows, out_root: Path,
                       sampling: Mapping[str, Any] | None = None, images_per_prompt: int = 1, seed: int = 0,
                       batch_size: int = 50, groups: Mapping[str, Any] | None = None) -> ScoredRun:
    """``cascade`` with ``sampling`` changes ({stage name: {field: value}}) on ``rows`` of ``benchmark``, generated
    into ``out_root/<run-id>/`` and scored (no baseline)."""
    from evalkit.adapters.imagen import ImagenAdapter
    from evalkit.metrics.toyworld import QUESTIONS, image_answers, stats_of
    from evalkit.runs.generate import generate_run

    configs = {stage.name: replace(stage.sampling, **dict((sampling or {}).get(stage.name, {}))).validate()
               for stage in cascade.stages}
    adapter = ImagenAdapter(cascade, checkpoint, configs)
    before = _existing_images(out_root)
    start = time.time()
    run = generate_run(adapter, benchmark, out_root, list(rows), images_per_prompt, seed, batch_size=batch_size)
    seconds = time.time() - start
    records = run.completed_records()
    answers = image_answers(records, [run.image_path(r) for r in records])
    generated = _existing_images(out_root) - before
    return ScoredRun(run, dict(zip(QUESTIONS, stats_of(answers, groups))), answers, seconds if generated else 0.0,
                     generated)


def _existing_images(root: Path) -> int:
    return sum(1 for _ in Path(root).glob("*/images/*.png")) if Path(root).is_dir() else 0


def cell(estimate: Estimate) -> str:
    """A share with its 95% interval, e.g. ``62.5% [41-80] n=24``; "-" when nothing asked it."""
    if not estimate.n or estimate.value is None:
        return "-"
    return f"{estimate.value:.1%} [{100 * estimate.low:.0f}-{100 * estimate.high:.0f}] n={estimate.n}"


def cells(scored: ScoredRun, questions: Sequence[str]) -> str:
    return " | ".join(cell(scored.estimate(q)) for q in questions)
