"""The project's own regression gate (.ci/gate, run by .ci/run on every change) fails a degraded model and refuses
an evaluation that cannot be compared with its committed baseline. (.ci/run itself shows the unchanged model
passing it.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _gate(tmp_path, *run_args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVALKIT": f"{sys.executable} -m evalkit", "GATE_OUT": str(tmp_path)}
    return subprocess.run([str(REPO / ".ci" / "gate"), *run_args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1800)


def test_a_base_sampler_with_4_steps_instead_of_16_fails_the_gate(tmp_path):
    result = _gate(tmp_path, "--opt", "steps=4")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REGRESSION" in result.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert "toyworld.all" in summary and "REGRESSION" in summary.upper()


def test_an_evaluation_of_another_size_is_refused_not_compared(tmp_path):
    # the base stage alone at 1 image per prompt: quick to make, and comparable in nothing but the prompts
    result = _gate(tmp_path, "--images-per-prompt", "1", "--opt", "stages=1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ERROR: the run could not be checked" in result.stdout
    assert "incomparable: images_per_prompt differs: 2 (baseline) vs 1 (run)" in result.stdout
    assert "REGRESSION" not in result.stdout
