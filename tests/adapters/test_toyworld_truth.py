"""The toyworld-truth adapter: ground-truth renders through the real run pipeline, read back by the analyzer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.benchmarks.registry import load_benchmark
from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.toyworld.palette import BACKGROUND


def _run(tmp_path, *extra: str) -> int:
    return main(["run", "--model", "toyworld-truth", "--benchmark", "toyworld", "--limit", "10",
                 "--images-per-prompt", "2", "--out", str(tmp_path), "--quiet", *extra])


def test_every_rendered_image_is_correct_by_the_toyworld_metric(tmp_path, capsys):
    assert _run(tmp_path, "--size", "64") == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert main(["score", str(run), "--metrics", "toyworld", "--opt", "toyworld.baseline_samples=1"]) == 0
    stats = json.loads((run / "metrics.json").read_text())["metrics"]
    assert stats["toyworld.all"]["overall"]["value"] == 1.0 and stats["toyworld.all"]["overall"]["n"] == 20
    with Image.open(sorted((run / "images").iterdir())[0]) as image:
        assert image.size == (64, 64)


def test_same_seed_same_bytes_other_seed_moves_objects_within_their_cells():
    adapter = create_adapter("toyworld-truth", AdapterOptions())
    row = next(r for r in load_benchmark("toyworld").rows if r.category == "Positional")
    first, again, other = adapter.generate(GenerationBatch([row.prompt] * 3, [5, 5, 6], 128, 128))
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()
    # same colours in the same amounts (shapes and sizes kept), only positions differ
    def colour_counts(image):
        values, counts = np.unique(np.asarray(image).reshape(-1, 3), axis=0, return_counts=True)
        return {tuple(v): c for v, c in zip(values, counts) if tuple(v) != tuple(BACKGROUND)}
    assert colour_counts(first) == colour_counts(other)


@pytest.mark.parametrize("extra, message", [
    (("--size", "64x32"), "renders square images"),
    (("--model-path", "/tmp"), "has no model files"),
    (("--opt", "guidance=3"), "guidance"),
])
def test_bad_use_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    assert _run(tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_prompt_outside_the_toy_world_is_refused_by_name(tmp_path):
    adapter = create_adapter("toyworld-truth", AdapterOptions())
    with pytest.raises(EvalkitError, match="draws only toy-world prompts.*a photo of a cat"):
        adapter.generate(GenerationBatch(["a photo of a cat"], [0], 64, 64))
