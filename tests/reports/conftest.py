"""Fixtures of the gate tests: simulated metrics.json documents written into run directories, and the random
Inception / tiny CLIP weights and image folders of the metrics tests (for runs scored by `evalkit score`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.metrics import metrics_file
from tests.metrics.conftest import clip_weights, folders, inception_weights  # noqa: F401 (fixtures)
from tests.reports.simulate import SimulatedModel, document, mean_stat, wilson_stat


def write_run(root: Path, name: str, doc: dict, valid: bool = True) -> Path:
    """A directory holding ``doc`` as its metrics.json (schema-checked unless a test breaks it on purpose)."""
    if valid:
        metrics_file.validate(doc)
    run = root / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.json").write_text(json.dumps(doc))
    return run


@pytest.fixture
def model() -> SimulatedModel:
    return SimulatedModel(prompts=100, per_prompt=2, seed=11)


@pytest.fixture
def make_run(tmp_path, model):
    """make_run(name, clip_shift=0.0, accuracy=(k, n), edit=None, valid=True) -> run dir with a clip and a
    toyworld.all stat; ``edit(doc)`` changes the document before it is written."""

    def make(name: str, clip_shift: float = 0.0, accuracy: tuple[int, int] = (300, 400), edit=None,
             valid: bool = True) -> Path:
        doc = document({"clip": mean_stat(model.scores(clip_shift), model.keys), "toyworld.all": wilson_stat(*accuracy)},
                       run_id=name)
        if edit is not None:
            edit(doc)
        return write_run(tmp_path, name, doc, valid)

    return make
