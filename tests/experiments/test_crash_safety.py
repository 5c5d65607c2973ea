"""10 SIGKILLs of `evalkit run` and `evalkit score` (toyworld-truth, pixel KID) at seeded random writes, each
followed by the same command: every kill survived (complete, byte-identical, metrics identical, no temp left, one
spec per run directory); and the checks themselves catch each kind of damage they look for. The full count:
``python -m evalkit.experiments.crash_safety --kills 20`` (3 of them with the built-in Imagen)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.experiments import crash_checks, crash_safety
from evalkit.experiments.kill_watch import Inotify


@pytest.fixture(scope="module")
def ten_kills(tmp_path_factory):
    try:
        Inotify().close()
    except (OSError, AttributeError) as error:
        pytest.skip(f"needs Linux inotify: {error}")
    root = tmp_path_factory.mktemp("crash")
    argv = ["--kills", "10", "--imagen-kills", "0", "--work", str(root / "work"), "--out", str(root / "crash.md"),
            "--json", str(root / "crash.json")]
    code = crash_safety.main(argv)
    return code, json.loads((root / "crash.json").read_text()), (root / "crash.md").read_text(), root / "work"


def test_ten_kills_of_run_and_score_are_all_survived(ten_kills):
    code, figures, text, _ = ten_kills
    assert figures["mismatches"] == [], text
    assert figures["kills_made"] == 10 and figures["kills_survived"] == 10 and code == 0
    kinds = {kill["target"].split()[0] for kill in figures["kills"]}
    assert {"image", "index", "manifest", "timing", "metrics", "cache", "at"} <= kinds  # every kind of write, and
    assert {kill["command"] for kill in figures["kills"]} == {"run", "score"}           # random times
    assert figures["kills_inside_a_write"] >= 1  # some kill left a half-written temp file, which the rerun removed
    assert all(kill["returncode"] == -9 for kill in figures["kills"])
    assert "**10 kills made, 10 survived, 0 mismatches**" in text


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "runs" / run.name
    shutil.copytree(run, target)
    return target


def test_the_checks_catch_a_changed_image_a_temp_a_torn_log_and_other_metrics(ten_kills, tmp_path):
    work = ten_kills[3]
    scored = next((work / "reference" / "scored").iterdir())  # a copy of the uninterrupted run, scored
    reference = work / "reference" / "runs" / scored.name
    run = _copy(reference, tmp_path)
    assert crash_checks.check_run(run, reference) == []
    first = sorted((run / "images").iterdir())[0]
    first.write_bytes(sorted((run / "images").iterdir())[1].read_bytes())
    (run / "images" / ".tmp-1-x.png").write_bytes(b"\x89PNG")
    with (run / "generation.jsonl").open("ab") as log:
        log.write(b'{"images": 1')
    problems = crash_checks.check_run(run, reference)
    assert any("1 images differ" in p for p in problems) and any("torn line" in p for p in problems)
    assert any("runs verify" in p and "1 changed" in p and "1 extra" in p for p in problems)
    assert crash_checks.temp_files(tmp_path) == [f"runs/{run.name}/images/.tmp-1-x.png"]

    expected = crash_checks.comparable_metrics(scored / "metrics.json")
    assert crash_checks.check_metrics(scored, expected) == []
    other = json.loads((scored / "metrics.json").read_text())
    other["metrics"]["kid"]["overall"]["value"] += 1e-12
    (run / "metrics.json").write_text(json.dumps(other))
    assert crash_checks.check_metrics(run, expected) == ["metrics.json differs from the uninterrupted scoring (kid)"]


def test_the_checks_catch_a_run_directory_holding_another_spec_and_a_damaged_cache_entry(ten_kills, tmp_path):
    work = ten_kills[3]
    first, second = sorted((work / "reference" / "runs").iterdir())  # seed 0 and seed 1: two specs
    shutil.copytree(first, tmp_path / "out" / first.name)
    assert crash_checks.check_one_spec_per_directory(tmp_path) == []
    shutil.copytree(second, tmp_path / "out" / (first.name[:-12] + "0" * 12))
    problems = crash_checks.check_one_spec_per_directory(tmp_path)
    assert problems == [f"{tmp_path / 'out' / (first.name[:-12] + '0' * 12)} holds run {second.name} "
                        f"(spec {second.name[-12:]})"]

    cache = tmp_path / "cache"
    shutil.copytree(work / "reference" / "score-cache" / "features", cache)
    assert crash_checks.check_cache(cache) == []
    entry = sorted(cache.glob("*.npy"))[0]
    entry.write_bytes(entry.read_bytes()[:100])
    (problem,) = crash_checks.check_cache(cache)
    assert problem.startswith(f"cache entry {entry.name} does not load")
