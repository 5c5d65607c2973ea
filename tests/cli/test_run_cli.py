"""`evalkit run` as a user types it: subprocesses, exit codes, one-line errors, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests import fake_plugin


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    plugin_root = fake_plugin.install(tmp_path_factory.mktemp("plugin"))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(plugin_root), environment.get("PYTHONPATH", "")])
    return environment


def evalkit(env, *args, **kwargs):
    return subprocess.run([sys.executable, "-m", "evalkit", *args], env=env, capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_run_on_drawbench_writes_images_manifest_and_index(env, tmp_path, shared_data):
    result = evalkit(env, "run", "--model", "fake", "--limit", "8", "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert len(list((run_dir / "images").glob("*.png"))) == 32
    assert (run_dir / "manifest.json").is_file() and (run_dir / "index.csv").is_file()
    listing = evalkit(env, "runs", "list", "--out", str(tmp_path))
    assert run_dir.name in listing.stdout and "32/32" in listing.stdout
    shown = evalkit(env, "runs", "show", str(run_dir))
    assert "complete" in shown.stdout and "drawbench" in shown.stdout


def test_benchmarks_show_prints_the_categories(env, shared_data):
    result = evalkit(env, "benchmarks", "show", "drawbench")
    assert result.returncode == 0
    assert "200 prompts, 11 categories" in result.stdout
    assert "Gary Marcus et al." in result.stdout and "Rare Words" in result.stdout


def _bad_prompt_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("prompt,category\nfine,A\nnot,fine,at all\n")
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nosuch"], "unknown model 'nosuch'; known models: .*fake"),
        (["--model", "fake", "--prompts", "/no/such/file.csv"], "does not exist"),
        (["--model", "fake", "--prompts", "{bad}"], "bad.csv, line 3: expected 2 fields"),
        (["--model", "fake", "--benchmark", "nope"], "unknown benchmark 'nope'"),
        (["--model", "fake", "--limit", "2", "--out", "{file}/sub"], "cannot create output directory"),
        (["--model", "fake", "--limit", "0"], "expected a positive integer, got 0"),
        (["--model", "fake", "--images-per-prompt", "x"], "expected a positive integer, got 'x'"),
        (["--model", "fake", "--size", "0x4"], "expected SIZE or HEIGHTxWIDTH"),
        (["--model", "fake", "--opt", "speed=3"], "does not take option\\(s\\) speed"),
        (["--model", "fake", "--device", "tpu"], "--device must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(env, tmp_path, shared_data, args, message):
    import re

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = [a.replace("{bad}", str(_bad_prompt_file(tmp_path))).replace("{file}", str(blocker)) for a in args]
    result = evalkit(env, "run", *args, "--out", str(tmp_path / "runs")) if "--out" not in args else evalkit(env, "run", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _pngs(images: Path) -> list[Path]:
    """The finished images (pathlib's glob also matches the .tmp-* files of writes in progress)."""
    return sorted(p for p in images.glob("*.png") if not p.name.startswith("."))


def _wait_for_images(process, images: Path, count: int, seconds: float = 180) -> None:
    """Until ``count`` PNGs exist (the process then hangs: --opt hang_after), failing if it ends first."""
    deadline = time.time() + seconds
    while len(_pngs(images)) < count:
        assert process.poll() is None, f"the run ended before it hung: {process.communicate()}"
        assert time.time() < deadline, "the run made no progress"
        time.sleep(0.05)


def test_a_run_killed_with_sigkill_resumes_to_exactly_the_missing_images(env, tmp_path, shared_data):
    """Killed while hanging after its 8th image (no race with the kill: the images written are known), the same
    command resumes with exactly the 22 missing images, and the run equals an uninterrupted one byte for byte."""
    args = ["run", "--model", "fake", "--limit", "10", "--images-per-prompt", "3", "--batch-size", "2",
            "--out", str(tmp_path / "runs"), "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "evalkit", *args, "--opt", "hang_after=8"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not list((tmp_path / "runs").glob("*/images")) and time.time() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        run_dir = next((tmp_path / "runs").glob("*/images")).parent
        _wait_for_images(process, run_dir / "images", 8)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    before = {p.name: p.stat().st_mtime_ns for p in _pngs(run_dir / "images")}
    assert len(before) == 8

    result = evalkit(env, *args)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr and "(22 new)" in result.stderr
    pngs = _pngs(run_dir / "images")
    assert len(pngs) == 30
    for png in pngs:
        with Image.open(png) as image:
            image.load()  # decodes fully: no partial file survived
    after = {p.name: p.stat().st_mtime_ns for p in pngs}
    assert all(after[name] == mtime for name, mtime in before.items())  # only the missing ones were generated
    assert not [p for p in run_dir.rglob(".tmp-*")]
    verified = evalkit(env, "runs", "verify", str(run_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    fresh = evalkit(env, *args[:-3], "--out", str(tmp_path / "fresh"), "--quiet")
    fresh_dir = Path(fresh.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in (fresh_dir / "images").iterdir()) == [p.name for p in pngs]
    assert all((fresh_dir / "images" / p.name).read_bytes() == p.read_bytes() for p in pngs)
    assert (fresh_dir / "index.csv").read_bytes() == (run_dir / "index.csv").read_bytes()  # hashes included
