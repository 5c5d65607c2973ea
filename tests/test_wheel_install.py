"""A wheel install works: the benchmark manifests and the metrics.json schema ship inside the package.

Builds the wheel from this checkout without network (no build isolation: the venv's setuptools), installs it into a
temporary folder, and runs `evalkit benchmarks show drawbench` and `evalkit metrics list` from that copy only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_data_or_skip

RUN_INSTALLED = """
import sys
sys.path.insert(0, sys.argv[1])
import evalkit
assert evalkit.__file__.startswith(sys.argv[1]), evalkit.__file__
from evalkit.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out / "dist"), str(REPO)], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PIP_NO_INDEX": "1"})
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((out / "dist").glob("evalkit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "evalkit/benchmarks/manifests/drawbench.json" in names and "evalkit/metrics/schema.json" in names
    target = out / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                              str(target), str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    return target


def run_installed(target: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN_INSTALLED, str(target), *argv], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_installed_wheel_loads_drawbench_with_its_manifest(installed, tmp_path):
    data = shared_data_or_skip()
    shown = run_installed(installed, "benchmarks", "show", "drawbench", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "200" in shown.stdout and "Colors" in shown.stdout
    assert data.name in os.environ.get("EVALKIT_DATA", str(data))


def test_installed_wheel_reads_its_own_schema(installed, tmp_path):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from evalkit.metrics import metrics_file; "
            "s = metrics_file.schema(); print(s['title'])")
    found = subprocess.run([sys.executable, "-c", code, str(installed)], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    assert found.returncode == 0, found.stderr
    assert "schema version 1" in found.stdout
