"""torchrun (gloo on CPU): 2 processes make the bytes and the numbers 1 process makes; a killed distributed run is
finished by a rerun with another number of ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN = ["--benchmark", "toyworld", "--limit", "12", "--images-per-prompt", "2", "--quiet"]


def _env() -> dict[str, str]:
    # torchrun gives every process OMP_NUM_THREADS=1; a single process is compared at the same thread count
    return {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def _evalkit(*args: str, ranks: int = 1, check: bool = True, **kw) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
                 "--standalone", "-m", "evalkit"] if ranks > 1 else [sys.executable, "-m", "evalkit"])
    result = subprocess.run(launcher + list(args), env=_env(), capture_output=True, text=True, timeout=600, **kw)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def _run_dir(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def _images(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run / "images").iterdir())}


def test_two_ranks_make_the_same_images_as_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["run", "--model", "imagen", "--opt", "stages=1", *RUN]
    _evalkit(*args, "--out", str(one))
    result = _evalkit(*args, "--out", str(two), ranks=2)
    assert result.stdout.strip().splitlines() == [str(_run_dir(two))]  # only rank 0 prints
    run = _run_dir(two)
    assert _images(_run_dir(one)) == _images(run) and len(_images(run)) == 24
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["status"] == "complete"
    ranks = [json.loads(line).get("rank") for line in (run / "generation.jsonl").read_text().splitlines()]
    assert sorted(set(ranks)) == [0, 1]
    assert _evalkit("runs", "verify", str(run)).returncode == 0


def test_distributed_scoring_equals_one_process(tmp_path):
    from evalkit.metrics.inception import save_random_weights

    inception_weights = save_random_weights(tmp_path / "random-inception.pth", seed=0)
    out = tmp_path / "runs"
    _evalkit("run", "--model", "toyworld-truth", *RUN, "--out", str(out), "--seed", "0")
    _evalkit("run", "--model", "toyworld-truth", *RUN, "--out", str(out), "--seed", "1")
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    generated, reference = runs[0], runs[1]
    score = ["score", str(generated), "--metrics", "fid,kid,prdc,toyworld", "--ref", str(reference),
             "--weights", f"inception={inception_weights}", "--opt", "kid.extractor=pixels",
             "--opt", "kid.subset_size=10", "--opt", "prdc.extractor=pixels", "--no-cache"]
    _evalkit(*score)
    single = json.loads((generated / "metrics.json").read_text())["metrics"]
    (generated / "metrics.json").unlink()
    _evalkit(*score, ranks=2)
    multi = json.loads((generated / "metrics.json").read_text())["metrics"]
    assert set(single) == set(multi)
    for name in single:
        a, b = single[name]["overall"]["value"], multi[name]["overall"]["value"]
        assert b == pytest.approx(a, rel=1e-6, abs=1e-12), name


def test_a_killed_distributed_run_is_finished_by_a_rerun_with_one_rank(tmp_path):
    out = tmp_path / "runs"
    args = ["run", "--model", "imagen", "--opt", "stages=1", *RUN, "--batch-size", "2", "--out", str(out)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                "-m", "evalkit", *args]
    process = subprocess.Popen(launcher, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        images = list(out.glob("*/images/*.png"))
        if len(images) >= 4:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # every rank and the launcher at once, mid-run
    process.wait(timeout=60)
    run = _run_dir(out)
    assert 4 <= len(list((run / "images").glob("*.png"))) < 24
    result = _evalkit(*args)  # one process finishes what two left
    assert "resuming" in result.stderr
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert len(_images(run)) == 24
    assert _evalkit("runs", "verify", str(run)).returncode == 0


def test_a_failing_rank_is_named_with_its_prompt(tmp_path):
    from evalkit.benchmarks.registry import load_benchmark

    toy = [row.prompt for row in load_benchmark("toyworld").rows[:3]]
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,category\n" + "".join(f"{p},Toy\n" for p in toy[:2] + ["a photo of a cat", toy[2]]))
    result = _evalkit("run", "--model", "toyworld-truth", "--prompts", str(prompts), "--images-per-prompt", "1",
                      "--batch-size", "1", "--out", str(tmp_path / "runs"), "--quiet", ranks=2, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert errors and "failed on rank 0 of 2" in errors[0] and "prompt 2 sample 0" in errors[0]
    assert "a photo of a cat" in errors[0]
