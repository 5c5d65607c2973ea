"""A third-party metric installed as a package (a dist-info with an `evalkit.metrics` entry point) is listed by
`evalkit metrics list` and scores a run through `evalkit score`, exactly like the built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.metrics import metrics_file
from evalkit.runs.store import ImageRecord, Run, image_file

MODULE = textwrap.dedent(
    '''
    from dataclasses import dataclass, field
    import numpy as np
    from PIL import Image
    from evalkit.estimate import Estimate
    from evalkit.metrics.base import Needs, Option, Stat, parse_positive_int

    @dataclass(frozen=True)
    class Brightness:
        name: str = "brightness"
        higher_is_better: bool = True
        description: str = "mean pixel value of the generated images (a test plug-in)"
        stats: tuple = ("brightness",)
        needs: Needs = Needs()
        options: dict = field(default_factory=lambda: {"channel": Option(0, parse_positive_int, "RGB channel + 1 (0: all)")})

        def compute(self, ctx, options):
            values = []
            for path in ctx.images:
                pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
                values.append(pixels.mean() if options["channel"] == 0 else pixels[..., options["channel"] - 1].mean())
            values = np.asarray(values)
            groups = {g: {label: Estimate.point(values[idx].mean(), len(idx)) for label, idx in found.items()}
                      for g, found in ctx.groups.items()}
            return [Stat("brightness", Estimate.point(values.mean(), len(values)), groups)]

    BRIGHTNESS = Brightness()
    '''
)


@pytest.fixture
def plugin_path(tmp_path) -> Path:
    root = tmp_path / "plugin"
    root.mkdir()
    (root / "evalkit_brightness.py").write_text(MODULE)
    dist = root / "evalkit_brightness-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalkit-brightness\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalkit.metrics]\nbrightness = evalkit_brightness:BRIGHTNESS\n")
    return root


@pytest.fixture
def run_dir(tmp_path) -> Path:
    rng = np.random.default_rng(3)
    records = [ImageRecord(i // 2, i % 2, i, image_file(i // 2, i % 2), f"prompt {i // 2}", ["A", "B"][i // 4])
               for i in range(8)]
    run = Run.create(tmp_path / "run", {"run_id": "plugin-run", "benchmark": {"name": "test", "content_hash": "x"},
                                        "images_per_prompt": 2, "n_images": 8}, records)
    for record in records:
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(run.image_path(record))
    return run.path


def evalkit(plugin: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "evalkit", *argv], capture_output=True, text=True, env=env, timeout=300)


def test_plugin_metric_is_listed_and_scores_a_run(plugin_path, run_dir):
    listed = evalkit(plugin_path, "metrics", "list")
    assert listed.returncode == 0, listed.stderr
    assert "brightness  (higher is better)" in listed.stdout and "test plug-in" in listed.stdout

    scored = evalkit(plugin_path, "score", str(run_dir), "--metrics", "brightness", "--opt", "brightness.channel=2")
    assert scored.returncode == 0, scored.stderr
    document = json.loads((run_dir / "metrics.json").read_text())
    metrics_file.validate(document)
    stat = document["metrics"]["brightness"]
    # independent of the plug-in: the green channel's mean over the run's files
    files = sorted((run_dir / "images").glob("*.png"))
    expected = np.mean([np.asarray(Image.open(f).convert("RGB"), dtype=np.float64)[..., 1].mean() for f in files])
    assert stat["overall"]["value"] == pytest.approx(expected, rel=1e-12) and stat["overall"]["n"] == 8
    assert set(stat["groups"]["category"]) == {"A", "B"} and stat["options"] == {"channel": 2}
    assert stat["metric"] == "brightness" and stat["higher_is_better"] is True


def test_plugin_metric_options_are_checked_at_the_boundary(plugin_path, run_dir):
    bad = evalkit(plugin_path, "score", str(run_dir), "--metrics", "brightness", "--opt", "brightness.colour=2")
    assert bad.returncode == 2 and "unknown option brightness.colour" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (run_dir / "metrics.json").exists()
    bad = evalkit(plugin_path, "score", str(run_dir), "--metrics", "brightness", "--opt", "brightness.channel=red")
    assert bad.returncode == 2 and "brightness.channel" in bad.stderr and "Traceback" not in bad.stderr
    bad = evalkit(plugin_path, "score", str(run_dir), "--metrics", "brightness", "--opt", "kid.subsets=3")
    assert bad.returncode == 2 and "not among the metrics scored" in bad.stderr
