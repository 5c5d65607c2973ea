"""A full disk while generating or scoring, and `evalkit runs verify`: one line and exit 2 naming the file and "no
space left", nothing corrupt or partial left visible, and a rerun after freeing space that ends byte-identical to an
uninterrupted run. (SIGKILL at random moments: tests/experiments/test_crash_safety.py.)

    .venv/bin/python -m pytest tests/runs/test_crash_safety.py -q
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit import atomic
from evalkit.cli import main
from evalkit.runs.integrity import verify_run
from evalkit.runs.store import open_run

RUN = ["run", "--model", "toyworld-truth", "--benchmark", "toyworld", "--limit", "12", "--images-per-prompt", "2",
       "--size", "64", "--batch-size", "4", "--quiet"]


def evalkit(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_run(capsys, out: Path) -> Path:
    code, stdout, err = evalkit(capsys, *RUN, "--out", out)
    assert code == 0, err
    return Path(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*RUN, "--out", str(tmp_path_factory.mktemp("uninterrupted"))])
    assert code == 0, err.getvalue()
    return Path(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def reference(uninterrupted, tmp_path) -> Path:
    """A copy of an uninterrupted run (tests may change it)."""
    return Path(shutil.copytree(uninterrupted, tmp_path / "reference" / uninterrupted.name))


def messages(err: str) -> list[str]:
    """What evalkit printed on stderr, without progress bars."""
    return [line for line in re.split(r"[\r\n]", err) if line.startswith("evalkit:")]


def temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if atomic.is_temp(p.name)]


def assert_same_run(run: Path, reference: Path) -> None:
    """Images and index.csv (with its hashes) byte-identical to the uninterrupted run; verify passes; complete."""
    names = sorted(p.name for p in (reference / "images").iterdir())
    assert sorted(p.name for p in (run / "images").iterdir()) == names
    assert all((run / "images" / n).read_bytes() == (reference / "images" / n).read_bytes() for n in names)
    assert (run / "index.csv").read_bytes() == (reference / "index.csv").read_bytes()
    assert open_run(run).manifest["status"] == "complete"
    assert verify_run(open_run(run)).ok


class _Raw(io.FileIO):
    def __init__(self, fd: int, disk: "FullDisk"):
        super().__init__(fd, "wb")
        self.disk, self.torn = disk, False

    def write(self, data) -> int:
        if not self.disk.full:
            return super().write(data)
        if not self.torn and len(data) > 1:  # what still fits, as a real disk writes before it fails
            self.torn = True
            return super().write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullDisk:
    """Stands in for evalkit.atomic's ``os``: the disk fills at the ``fill_at``-th image (half of it is written),
    and from then on every write fails with ENOSPC until ``full`` is cleared."""

    def __init__(self, fill_at: int | None = None):
        self.fill_at, self.images, self.full = fill_at, 0, fill_at == 0

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd: int, mode: str = "wb"):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".png"):
            self.images += 1
            self.full = self.full or self.images == self.fill_at
        return io.BufferedWriter(_Raw(fd, self))


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")


@needs_proc
def test_a_disk_filling_up_mid_run_is_one_line_and_a_rerun_completes(capsys, tmp_path, reference, monkeypatch):
    disk = FullDisk(fill_at=10)
    monkeypatch.setattr(atomic, "os", disk)
    code, _, err = evalkit(capsys, *RUN, "--out", tmp_path / "runs")
    run_dir = tmp_path / "runs" / reference.name
    records = open_run(run_dir).records()  # manifest and index still valid
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"cannot write {run_dir / records[9].file}: no space left on device" in err
    assert "Traceback" not in err and not temps(tmp_path / "runs")
    present = sorted(p.name for p in (run_dir / "images").iterdir())
    assert present == sorted(Path(r.file).name for r in records[:9])  # the 10th image left nothing behind
    assert all((run_dir / "images" / n).read_bytes() == (reference / "images" / n).read_bytes() for n in present)
    found = verify_run(open_run(run_dir))
    assert not found.changed and not found.extra and len(found.missing) == 15

    disk.full = False  # space freed
    code, _, err = evalkit(capsys, *RUN, "--out", tmp_path / "runs")
    assert code == 0, err
    assert "resuming" in err and "(15 new)" in err
    assert_same_run(run_dir, reference)


@needs_proc
def test_a_full_disk_while_scoring_keeps_the_old_metrics_and_a_rescore_matches(capsys, tmp_path, reference,
                                                                               monkeypatch):
    run_dir = tmp_path / "scored" / reference.name
    shutil.copytree(reference, run_dir)
    score = ["score", run_dir, "--metrics", "toyworld", "--no-cache"]
    assert evalkit(capsys, *score)[0] == 0
    before = (run_dir / "metrics.json").read_bytes()
    monkeypatch.setattr(atomic, "os", FullDisk(fill_at=0))
    code, _, err = evalkit(capsys, *score)
    assert code == 2 and len(messages(err)) == 1 and "Traceback" not in err, err
    assert f"cannot write {run_dir / 'metrics.json'}: no space left on device" in err
    assert (run_dir / "metrics.json").read_bytes() == before and not temps(run_dir)

    monkeypatch.undo()
    assert evalkit(capsys, *score)[0] == 0
    again = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    first = json.loads(before)["metrics"]
    assert again.keys() == first.keys()
    assert all(again[k]["overall"] == first[k]["overall"] and again[k]["groups"] == first[k]["groups"] for k in first)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs (root only; skipped where mounting is not permitted, e.g. an unprivileged container)."""
    point = tmp_path / "disk"
    point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_a_real_full_tmpfs_is_one_line_and_a_rerun_after_freeing_space_completes(small_tmpfs, tmp_path, reference):
    filler = small_tmpfs / "filler"
    stats = os.statvfs(small_tmpfs)
    filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 96 * 1024))  # 96 KiB left: a few images fit
    command = [sys.executable, "-m", "evalkit", *RUN, "--out", str(small_tmpfs / "runs")]
    failed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2, failed.stderr
    line = failed.stderr.strip()
    assert len(line.splitlines()) == 1 and "no space left on device" in line.lower(), line
    assert str(small_tmpfs / "runs") in line and "Traceback" not in line

    run_dir = small_tmpfs / "runs" / reference.name
    run = open_run(run_dir)
    assert len(run.records()) == 24 and not temps(small_tmpfs)
    present = [p.name for p in (run_dir / "images").iterdir()]
    assert 0 < len(present) < 24
    assert all((run_dir / "images" / n).read_bytes() == (reference / "images" / n).read_bytes() for n in present)
    found = verify_run(run)
    assert not found.changed and not found.extra

    filler.unlink()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_run(run_dir, reference)


def _strip_hashes(index: Path, keep_header: bool, blank_from: int = 0) -> None:
    """Rewrite index.csv as an older evalkit wrote it (no sha256 column), or with the hashes of rows from
    ``blank_from`` on cleared, as a kill between those images and the index rewrite leaves it."""
    rows = list(csv.reader(io.StringIO(index.read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:]
    column = header.index("sha256")
    if keep_header:
        for row in body[blank_from:]:
            row[column] = ""
    else:
        header, body = header[:column], [row[:column] for row in body]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *body])
    index.write_text(buffer.getvalue(), encoding="utf-8")


def test_verify_passes_an_intact_run_and_names_each_changed_missing_and_extra_file(capsys, reference):
    code, out, _ = evalkit(capsys, "runs", "verify", reference)
    assert code == 0 and "24 planned images, 24 match their hash, 0 missing, 0 changed" in out

    images = sorted((reference / "images").iterdir())
    images[0].write_bytes(images[1].read_bytes())  # a valid PNG, the wrong one
    images[2].unlink()
    (reference / "images" / "stray.png").write_bytes(images[3].read_bytes())
    code, out, _ = evalkit(capsys, "runs", "verify", reference)
    assert code == 1
    assert f"changed     images/{images[0].name}" in out and f"missing     images/{images[2].name}" in out
    assert "extra       images/stray.png" in out and "22 planned" not in out
    assert "22 match their hash, 1 missing, 1 changed, 0 not hashed, 1 extra" in out


def test_verify_refuses_a_run_without_hashes_and_records_them_on_request(capsys, reference):
    _strip_hashes(reference / "index.csv", keep_header=False)
    code, _, err = evalkit(capsys, "runs", "verify", reference)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "records no image hashes" in err and "--record" in err
    code, out, _ = evalkit(capsys, "runs", "verify", "--record", reference)
    assert code == 0 and "recorded 24 image hashes" in out
    assert evalkit(capsys, "runs", "verify", reference)[0] == 0


def test_a_crash_between_images_and_their_index_rewrite_is_consistent_after_the_rerun(capsys, tmp_path, reference):
    """What a kill after the last batch's images and before the index rewrite leaves: images without hashes.
    verify says so (exit 1); rerunning the command hashes them, and the index equals the uninterrupted run's."""
    run_dir = tmp_path / "killed" / reference.name
    shutil.copytree(reference, run_dir)
    _strip_hashes(run_dir / "index.csv", keep_header=True, blank_from=20)
    code, out, _ = evalkit(capsys, "runs", "verify", run_dir)
    assert code == 1 and out.count("not hashed  images/") == 4 and "rerun the run's command" in out
    assert make_run(capsys, tmp_path / "killed") == run_dir
    assert_same_run(run_dir, reference)


def test_stale_temps_of_dead_writers_are_removed_and_a_live_writers_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    names = [f".tmp-{gone.pid}-abc.png", f".tmp-{os.getpid()}-def.png", ".tmp-legacy.png", "00000_00.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert atomic.remove_stale_temps(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1::2])


def test_a_failed_write_removes_its_temp_and_is_an_oserror_and_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "os", FullDisk(fill_at=0))
    with pytest.raises(OSError) as caught:
        atomic.write_bytes(tmp_path / "out.bin", b"x" * 100)
    assert isinstance(caught.value, atomic.EvalkitError) and caught.value.errno == errno.ENOSPC
    assert str(caught.value).startswith(f"cannot write {tmp_path / 'out.bin'}: no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_create_killed_before_its_manifest_leaves_no_temp_after_the_rerun(capsys, tmp_path, reference):
    """Killed inside Run.create's manifest write: index.csv and a manifest temp, no manifest.json."""
    run_dir = tmp_path / "runs" / reference.name
    (run_dir / "images").mkdir(parents=True)
    shutil.copy(reference / "index.csv", run_dir / "index.csv")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run_dir / f".tmp-{gone.pid}-killed.json").write_text('{"run_id": "half')
    assert make_run(capsys, tmp_path / "runs") == run_dir
    assert not temps(tmp_path / "runs")
    assert_same_run(run_dir, reference)
