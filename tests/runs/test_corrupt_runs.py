"""Corrupt run directories (manifest.json, index.csv, metrics.json, images) through every command that reads them:
`runs show`, `runs list`, `score`, `report`, `check`, `compare` and a resumed `run`. Each ends cleanly (exit 0, or
exit 2 with one line naming the file), the damaged file is never rewritten, and an index entry that points outside
the run directory is never followed.

    .venv/bin/python -m pytest tests/runs/test_corrupt_runs.py -q
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import fake_plugin
from tests.hostile import evalkit_cli

PROMPTS = "prompt,category\na red cube,A\na blue ball,B\ntwo green cones,A\n"


def run_command(prompts: Path, out: Path) -> list:
    return ["run", "--model", "fake", "--prompts", prompts, "--images-per-prompt", "2", "--out", out, "--quiet",
            "--device", "cpu"]


def score_command(run: Path, ref: Path) -> list:
    return ["score", run, "--metrics", "kid", "--opt", "kid.extractor=pixels", "--ref", ref, "--no-cache",
            "--workers", "0"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One scored run (the template every case copies), a reference image folder and a baseline of the run."""
    root = tmp_path_factory.mktemp("corrupt")
    fake_plugin.install(root / "plugin")
    prompts = root / "prompts.csv"
    prompts.write_text(PROMPTS)
    outcome = evalkit_cli(run_command(prompts, root / "template"))
    assert outcome.code == 0, outcome.describe()
    run = Path(outcome.stdout.strip().splitlines()[-1])
    ref = root / "ref"
    shutil.copytree(run / "images", ref)
    assert evalkit_cli(score_command(run, ref)).code == 0
    baseline = root / "baseline.json"
    assert evalkit_cli(["check", run, "--baseline", baseline, "--update-baseline"]).code == 0
    secret = root / "secret.png"  # a valid image outside every run: an escaping index entry must not reach it
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(secret)
    return {"root": root, "prompts": prompts, "run": run, "ref": ref, "baseline": baseline, "secret": secret}


def _edit_json(name, change):
    def apply(run: Path):
        data = json.loads((run / name).read_text())
        change(data)
        (run / name).write_text(json.dumps(data))
    return apply


def _write(name, data: bytes):
    def apply(run: Path):
        (run / name).write_bytes(data)
    return apply


def _truncate(name):
    def apply(run: Path):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: len(data) // 2])
    return apply


def _index_rows(change):
    """Rewrite index.csv after ``change(header, rows)`` edits its parsed rows in place."""
    def apply(run: Path):
        rows = list(csv.reader(io.StringIO((run / "index.csv").read_text())))
        header, body = rows[0], rows[1:]
        change(header, body)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *body])
        (run / "index.csv").write_text(buffer.getvalue())
    return apply


def _set(field, value):
    return lambda data: data.__setitem__(field, value)


def _drop_column(name):
    def change(header, body):
        at = header.index(name)
        for row in [header, *body]:
            del row[at]
    return change


def _cell(column, value, row=0):
    def change(header, body):
        body[row][header.index(column)] = value
    return change


def _symlink_image(run: Path):
    target = run / "images" / "00000_00.png"
    target.unlink()
    os.symlink("/etc/passwd", target)


MANIFEST = [
    ("manifest-not-json", _write("manifest.json", b"{not json")),
    ("manifest-truncated", _truncate("manifest.json")),
    ("manifest-empty", _write("manifest.json", b"")),
    ("manifest-array", _write("manifest.json", b"[1, 2]")),
    ("manifest-binary", _write("manifest.json", b"\xff\xfe\x00garbage")),
    ("manifest-deep", _write("manifest.json", b"[" * 100_000 + b"]" * 100_000)),
    ("manifest-no-run-id", _edit_json("manifest.json", lambda d: d.pop("run_id"))),
    ("manifest-no-benchmark", _edit_json("manifest.json", lambda d: d.pop("benchmark"))),
    ("manifest-no-n-images", _edit_json("manifest.json", lambda d: d.pop("n_images"))),
    ("manifest-n-images-text", _edit_json("manifest.json", _set("n_images", "many"))),
    ("manifest-benchmark-string", _edit_json("manifest.json", _set("benchmark", "drawbench"))),
    ("manifest-adapter-list", _edit_json("manifest.json", _set("adapter", ["fake"]))),
    ("manifest-negative-seed", _edit_json("manifest.json", _set("seed", -1))),
    ("manifest-zero-per-prompt", _edit_json("manifest.json", _set("images_per_prompt", 0))),
    ("manifest-height-text", _edit_json("manifest.json", _set("height", "16"))),
    ("manifest-width-bool", _edit_json("manifest.json", _set("width", True))),
    ("manifest-run-id-path", _edit_json("manifest.json", _set("run_id", "../../escape"))),
    ("manifest-huge-n-images", _edit_json("manifest.json", _set("n_images", 2**63))),
]
INDEX = [
    ("index-empty", _write("index.csv", b"")),
    ("index-header-only", _write("index.csv", b"prompt_index,sample,seed,file,prompt,category,extra\n")),
    ("index-truncated", _truncate("index.csv")),
    ("index-not-utf8", _write("index.csv", "prompt_index,sample\n0,0,caf\xe9\n".encode("latin-1"))),
    ("index-nul", _write("index.csv", b"prompt_index,sample,seed,file,prompt,category,extra\n0,0,1,\x00,a,A,{}\n")),
    ("index-open-quote", _write("index.csv", b'prompt_index,sample,seed,file,prompt,category,extra\n0,0,1,"x\n')),
    ("index-no-seed-column", _index_rows(_drop_column("seed"))),
    ("index-no-file-column", _index_rows(_drop_column("file"))),
    ("index-bad-prompt-index", _index_rows(_cell("prompt_index", "x"))),
    ("index-negative-sample", _index_rows(_cell("sample", "-1"))),
    ("index-sample-too-big", _index_rows(_cell("sample", "7"))),
    ("index-seed-float", _index_rows(_cell("seed", "1.5"))),
    ("index-ragged-row", _index_rows(lambda header, body: body[1].pop())),
    ("index-duplicate-row", _index_rows(lambda header, body: body.__setitem__(1, list(body[0])))),
    ("index-row-missing", _index_rows(lambda header, body: body.pop())),
    ("index-extra-row", _index_rows(lambda header, body: body.append(["9", "0", "1", "images/00009_00.png", "x",
                                                                      "A", "{}"]))),
    ("index-extra-not-json", _index_rows(_cell("extra", "{oops"))),
    ("index-extra-list", _index_rows(_cell("extra", "[1]"))),
    ("index-file-etc-passwd", _index_rows(_cell("file", "../../etc/passwd"))),
    ("index-file-absolute", _index_rows(_cell("file", "/etc/passwd"))),
    ("index-file-outside-image", _index_rows(_cell("file", "../../secret.png"))),
    ("index-file-other-image", _index_rows(_cell("file", "images/00001_01.png"))),
    ("index-prompt-edited", _index_rows(_cell("prompt", "a different prompt"))),
    ("image-symlink-out", _symlink_image),
]
METRICS = [
    ("metrics-not-json", _write("metrics.json", b"{\"schema_version\": 1, ")),
    ("metrics-truncated", _truncate("metrics.json")),
    ("metrics-empty", _write("metrics.json", b"")),
    ("metrics-array", _write("metrics.json", b"[]")),
    ("metrics-deep", _write("metrics.json", b"[" * 100_000 + b"]" * 100_000)),
    ("metrics-binary", _write("metrics.json", b"\x89PNG\r\n\x1a\n")),
    ("metrics-metrics-list", _edit_json("metrics.json", _set("metrics", []))),
    ("metrics-schema-99", _edit_json("metrics.json", _set("schema_version", 99))),
    ("metrics-value-text", _edit_json("metrics.json", lambda d: d["metrics"]["kid"]["overall"].__setitem__(
        "value", "x"))),
    ("metrics-stat-null", _edit_json("metrics.json", lambda d: d["metrics"].__setitem__("kid", None))),
]
CASES = MANIFEST + INDEX + METRICS
# A manifest without these fields is still read (runs made with the library API may have a short one); only
# resuming needs them all.
SHORT_MANIFESTS = {"manifest-no-n-images"}
ESCAPES = {"index-file-etc-passwd", "index-file-absolute", "index-file-outside-image", "image-symlink-out"}


def commands(made, run: Path, root: Path, tmp: Path) -> dict[str, list]:
    return {
        "runs show": ["runs", "show", run],
        "runs show --json": ["runs", "show", run, "--json"],
        "runs list": ["runs", "list", "--out", root],
        "score": score_command(run, made["ref"]),
        "report": ["report", run, "--out", tmp / "report"],
        "check": ["check", run, "--baseline", made["baseline"]],
        "compare": ["compare", made["run"], run],
        "run (resume)": run_command(made["prompts"], root),
    }


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "generation.jsonl"}


@pytest.mark.parametrize("name, corrupt", CASES, ids=[c[0] for c in CASES])
def test_every_command_ends_cleanly_on_a_corrupt_run(made, tmp_path, name, corrupt):
    root = tmp_path / "runs"
    run = root / made["run"].name
    shutil.copytree(made["run"], run, symlinks=True)
    corrupt(run)
    damaged = name.split("-")[0] + (".json" if name.startswith(("manifest", "metrics")) else ".csv")
    before = (run / damaged).read_bytes() if (run / damaged).is_file() else None
    for label, argv in commands(made, run, root, tmp_path).items():
        snapshot = _snapshot(run)
        outcome = evalkit_cli(argv)
        assert outcome.clean, f"{label}: {outcome.describe()}"
        if label == "run (resume)" and outcome.code == 0:  # a resume may only add images and update its status
            snapshot.pop("manifest.json", None)
        if label == "score" and outcome.code == 0 and name in SHORT_MANIFESTS:  # scored as it is: metrics merge
            snapshot.pop("metrics.json", None)
        after = _snapshot(run)
        assert {k: after.get(k) for k in snapshot} == snapshot, f"{label} rewrote the run's files"
        if name in ESCAPES and label in ("score", "report"):
            assert outcome.code == 2, f"{label} followed an entry out of the run: {outcome.describe()}"
        refused_by = ("run (resume)",) if name in SHORT_MANIFESTS else ("runs show", "score", "run (resume)")
        if name.startswith(("manifest", "index", "image")) and label in refused_by:
            assert outcome.code == 2 and damaged.split(".")[0] in outcome.error_lines[0] or name in ESCAPES, \
                f"{label} did not refuse {name}: {outcome.describe()}"
        if name.startswith("metrics") and label in ("score", "check", "report"):
            assert outcome.code == 2 and "metrics.json" in outcome.error_lines[0], f"{label}: {outcome.describe()}"
    if before is not None:
        assert (run / damaged).read_bytes() == before  # never rewritten, whatever ran
    assert not list(root.glob("*/images/.tmp-*"))
    assert sorted(p.name for p in made["root"].iterdir()) == ["baseline.json", "plugin", "prompts.csv", "ref",
                                                              "secret.png", "template"]  # nothing written outside


def test_a_manifest_without_its_index_is_not_overwritten(made, tmp_path):
    root = tmp_path / "runs"
    run = root / made["run"].name
    shutil.copytree(made["run"], run)
    (run / "index.csv").unlink()
    manifest = (run / "manifest.json").read_bytes()
    outcome = evalkit_cli(run_command(made["prompts"], root))
    assert outcome.code == 2 and "index.csv" in outcome.error_lines[0], outcome.describe()
    assert (run / "manifest.json").read_bytes() == manifest


def test_an_index_left_by_a_crash_before_its_manifest_is_completed(made, tmp_path):
    """Run.create writes index.csv, then manifest.json: a kill between the two leaves the planned index alone."""
    root = tmp_path / "runs"
    run = root / made["run"].name
    (run / "images").mkdir(parents=True)
    shutil.copy(made["run"] / "index.csv", run / "index.csv")
    outcome = evalkit_cli(run_command(made["prompts"], root))
    assert outcome.code == 0, outcome.describe()
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
