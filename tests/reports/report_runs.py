"""Small real runs for the report tests, made by the real pipeline (`evalkit run`, `evalkit score`) with models
and metrics that need no downloaded weights:

  truth     toyworld-truth on 8 toy-world prompts x 2 samples (64 px), scored by the toyworld metric (all correct)
  shuffled  the folder adapter on the same prompts with each prompt's images taken from the next prompt, run seed 1
            (so its seeds differ), scored by the toyworld metric (mostly wrong)
  escaped   the folder adapter on a prompt file whose prompts and categories hold markup (``<script>``, ``|``),
            scored by KID in pixel space against the truth run
  unscored  toyworld-truth again with another seed, never scored
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalkit.cli import main

SCRIPT_PROMPT = "<script>alert(1)</script> a red circle"
PIPE_PROMPT = "a | b & c <b>bold</b> *stars*"
PROMPTS = [SCRIPT_PROMPT, PIPE_PROMPT, "plain prompt number three", "plain prompt number four"]
CATEGORIES = ["Cat <i>one</i>", "Cat <i>one</i>", "two | pipes", "two | pipes"]


@dataclass(frozen=True)
class ToyRuns:
    truth: Path
    shuffled: Path
    escaped: Path
    unscored: Path


def _run(*args: str) -> Path:
    """`evalkit run ...`; the run directory it prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", *args, "--quiet"]) == 0
    return Path(out.getvalue().strip().splitlines()[-1])


def _score(run: Path, *args: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["score", str(run), *args]) == 0


def _shuffled_images(truth: Path, folder: Path) -> None:
    """Each prompt gets the images of the next prompt (by prompt index, cyclically)."""
    folder.mkdir()
    files = sorted((truth / "images").glob("*.png"))
    indices = sorted({int(f.name[:5]) for f in files})
    following = dict(zip(indices, indices[1:] + indices[:1]))
    for f in files:
        prompt, sample = int(f.name[:5]), int(f.name[6:8])
        source = truth / "images" / f"{following[prompt]:05d}_{sample:02d}.png"
        shutil.copy(source, folder / f"{prompt:05d}_{sample:02d}.png")


def _escaped_inputs(truth: Path, root: Path) -> tuple[Path, Path]:
    prompts = root / "markup-prompts.csv"
    with open(prompts, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "category"])
        writer.writerows(zip(PROMPTS, CATEGORIES))
    folder = root / "markup-images"
    folder.mkdir()
    files = sorted((truth / "images").glob("*_00.png"))[: len(PROMPTS)]
    for index, f in enumerate(files):
        for sample in range(2):
            shutil.copy(f, folder / f"{index:05d}_{sample:02d}.png")
    return prompts, folder


def make_toy_runs(root: Path) -> ToyRuns:
    common = ["--benchmark", "toyworld", "--limit", "8", "--images-per-prompt", "2", "--size", "64"]
    out = ["--out", str(root)]
    truth = _run("--model", "toyworld-truth", *common, *out)
    _score(truth, "--metrics", "toyworld", "--opt", "toyworld.baseline_samples=1")
    _shuffled_images(truth, root / "shuffled-images")
    shuffled = _run("--model", "folder", "--model-path", str(root / "shuffled-images"), "--seed", "1", *common, *out)
    _score(shuffled, "--metrics", "toyworld", "--opt", "toyworld.baseline_samples=1")
    prompts, folder = _escaped_inputs(truth, root)
    escaped = _run("--model", "folder", "--model-path", str(folder), "--prompts", str(prompts),
                   "--images-per-prompt", "2", *out)
    _score(escaped, "--metrics", "kid", "--ref", str(truth), "--opt", "kid.extractor=pixels",
           "--opt", "kid.subsets=10")
    unscored = _run("--model", "toyworld-truth", *common, "--seed", "5", *out)
    return ToyRuns(truth, shuffled, escaped, unscored)


@pytest.fixture(scope="session")
def toy_runs(tmp_path_factory) -> ToyRuns:
    return make_toy_runs(tmp_path_factory.mktemp("report-runs"))
