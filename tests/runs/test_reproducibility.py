"""Reproducibility, as the README promises it: the same spec on the same device and thread count gives the same
bytes and the same metrics; at another thread count the bytes may differ in the last bit, the metrics agree within
noise (the regression gate's rule: `evalkit compare` says "within noise"). The manifest records the machine; the
run id does not depend on it.

    .venv/bin/python -m pytest tests/runs/test_reproducibility.py -q
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from evalkit.reports.compare import compare_runs
from tests.hostile import evalkit_cli


@pytest.fixture(autouse=True)
def keep_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def make_run(out: Path, threads: int, *options: str, limit: int = 4) -> Path:
    outcome = evalkit_cli(["run", "--model", "imagen", "--benchmark", "toyworld", "--limit", str(limit),
                           "--images-per-prompt", "2", "--opt", "stages=1", *options, "--threads", str(threads),
                           "--out", out, "--quiet", "--device", "cpu"])
    assert outcome.code == 0, outcome.describe()
    return Path(outcome.stdout.strip().splitlines()[-1])


def score(run: Path) -> dict:
    outcome = evalkit_cli(["score", run, "--metrics", "toyworld", "--opt", "toyworld.bootstrap=200",
                           "--opt", "toyworld.baseline=false"])
    assert outcome.code == 0, outcome.describe()
    return json.loads((run / "metrics.json").read_text())


def without_timestamps(metrics: dict) -> dict:
    """Each stat's ``computed_at`` is a wall-clock stamp: two scorings a second apart differ there and nowhere else."""
    return {name: {k: v for k, v in stat.items() if k != "computed_at"} for name, stat in metrics.items()}


def digests(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run / "images").glob("*.png"))}


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_the_same_spec_twice_gives_the_same_bytes_and_metrics(tmp_path):
    first = make_run(tmp_path / "one", 2, "--opt", "steps=2")
    second = make_run(tmp_path / "two", 2, "--opt", "steps=2")
    assert first.name == second.name  # one spec, one run id
    assert len(digests(first)) == 8 and digests(first) == digests(second)
    assert without_timestamps(score(first)["metrics"]) == without_timestamps(score(second)["metrics"])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_resumed_run_has_the_bytes_of_an_uninterrupted_one(tmp_path, precision):
    """bf16 kernels round by batch shape: the resumed images are made in the plan's batches, so they match too."""
    options = ("--opt", "steps=2", "--opt", f"precision={precision}", "--batch-size", "3")
    once = make_run(tmp_path / "once", 2, *options)
    resumed = make_run(tmp_path / "resumed", 2, *options)
    planned = [row["file"] for row in csv.DictReader((resumed / "index.csv").open(encoding="utf-8"))]
    for file in (planned[1], planned[4]):  # one in each of the plan's first two batches of 3
        (resumed / file).unlink()
    assert make_run(tmp_path / "resumed", 2, *options) == resumed
    assert len(digests(once)) == 8 and digests(resumed) == digests(once)


def test_the_manifest_records_the_machine_but_the_run_id_ignores_it(tmp_path):
    one = make_run(tmp_path / "one", 1, "--opt", "steps=1", limit=1)
    two = make_run(tmp_path / "two", 2, "--opt", "steps=1", limit=1)
    assert one.name == two.name
    machines = [manifest(run)["machine"] for run in (one, two)]
    assert [m["torch_threads"] for m in machines] == [1, 2]
    for machine in machines:
        assert machine["device"] == "cpu" and machine["cpu"] and machine["cpu_count"] >= 1
        assert machine["zlib"] and machine["pillow"] and machine["numpy"] and machine["python"]
        assert "gpu" not in machine  # a CPU run names no GPU
    assert manifest(one)["spec_fingerprint"] == manifest(two)["spec_fingerprint"]


def test_another_thread_count_may_change_bytes_but_not_the_metrics(tmp_path):
    """The built-in Imagen's base stage (8 sampler steps) at 1 and at 2 torch threads: 8 toy-world prompts x 2."""
    one = make_run(tmp_path / "one", 1, "--opt", "steps=8", limit=8)
    two = make_run(tmp_path / "two", 2, "--opt", "steps=8", limit=8)
    assert one.name == two.name
    a, b = digests(one), digests(two)
    different = sum(a[name] != b[name] for name in a)
    print(f"{different} of {len(a)} images differ in bytes between 1 and 2 threads")
    score(one), score(two)
    rows = compare_runs(one, two).rows
    assert rows and not any(row.outside_noise for row in rows), [(r.stat, r.status) for r in rows]
    assert any(row.outside_noise is False for row in rows)
    shown = evalkit_cli(["compare", one, two])
    assert shown.code == 0 and "within noise" in shown.stdout and "outside noise" not in shown.stdout, shown.stdout
