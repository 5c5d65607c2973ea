"""Smoke test: the training-curve figures are drawn from the CSVs in reports/imagen/."""

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.experiments import plot_accuracy

REPO = Path(__file__).resolve().parents[2]
FIGURES = {"accuracy_vs_steps.png": (600, 400), "2026-11-25-h100-base-runs.png": (900, 360),
           "2026-11-26-cpu-position-finetunes.png": (900, 360), "2026-11-26-high-noise-expert.png": (900, 360)}


def test_draws_the_four_figures(tmp_path):
    assert plot_accuracy.main(["--data", str(REPO / "reports" / "imagen"), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIGURES)
    for name, size in FIGURES.items():
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size == size
            assert len(set(image.convert("L").getdata())) > 20  # lines and text were drawn, not a blank canvas


def test_missing_csv_is_one_line_error(tmp_path):
    with pytest.raises(EvalkitError, match="accuracy_vs_steps.csv: no such file"):
        plot_accuracy.main(["--data", str(tmp_path)])


def test_runs_as_a_module_with_exit_2_on_bad_input(tmp_path):
    done = subprocess.run([sys.executable, "-m", "evalkit.experiments.plot_accuracy", "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("evalkit: error:") and done.stderr.count("\n") == 1
