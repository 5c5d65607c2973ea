"""generation.jsonl: one durable line per generated batch; the reader and the efficiency summary."""

import csv
import json
import os
import statistics
from datetime import datetime

import pytest

from evalkit.adapters import AdapterOptions, create_adapter
from evalkit.adapters.base import adapter_device
from evalkit.benchmarks.registry import load_benchmark, select_subset
from evalkit.errors import EvalkitError
from evalkit.runs.efficiency import generation_efficiency
from evalkit.runs.pipeline import finish_run, generate_missing, prepare_run
from evalkit.runs.spec import RunSpec
from evalkit.runs.store import GENERATION_LOG, open_run
from tests import fake_plugin

DELAY = 0.02  # seconds the fake adapter sleeps per image


@pytest.fixture
def adapter(tmp_path_factory):
    fake_plugin.install(tmp_path_factory.mktemp("plugin"))
    return create_adapter("fake", AdapterOptions(extra={"delay": str(DELAY)}))


@pytest.fixture
def bench(tmp_path):
    path = tmp_path / "prompts.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "category"])
        for i in range(5):
            writer.writerow([f"prompt number {i}", "Other"])
    return load_benchmark("file", str(path))


def make_run(adapter, bench, out, batch_size=4):
    rows = select_subset(bench.rows, None)
    spec = RunSpec(bench.name, bench.content_hash, adapter.name, adapter.config(), None, 2, 0, 16, 16,
                   tuple(r.index for r in rows))
    run, missing = prepare_run(out, spec, bench, adapter, rows)
    generate_missing(run, adapter, missing, batch_size, progress=False)
    finish_run(run)
    return open_run(run.path)


def test_one_line_per_batch_with_its_images_keys_device_and_time(adapter, bench, tmp_path):
    run = make_run(adapter, bench, tmp_path / "runs")
    timings = run.generation_timings()
    assert [t["images"] for t in timings] == [4, 4, 2]  # 10 images in batches of 4
    keys = [tuple(k) for t in timings for k in t["keys"]]
    assert keys == [(r.prompt_index, r.sample) for r in run.records()]
    assert {t["device"] for t in timings} == {"unknown"}  # the third-party adapter does not say
    for t in timings:
        assert t["seconds"] >= DELAY * t["images"]  # the adapter slept that long inside generate
        assert datetime.fromisoformat(t["at"]).tzinfo is not None
    lines = (run.path / GENERATION_LOG).read_text().splitlines()
    assert [json.loads(line) for line in lines] == timings


def test_every_line_is_fsynced(adapter, bench, tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    make_run(adapter, bench, tmp_path / "runs")
    assert sum(path.endswith(GENERATION_LOG) for path in synced) == 3


def test_a_resumed_run_appends_only_the_batches_it_makes(adapter, bench, tmp_path):
    run = make_run(adapter, bench, tmp_path / "runs")
    before = run.generation_timings()
    records = run.records()
    for record in (records[1], records[2]):  # both in the plan's first batch of 4
        run.image_path(record).unlink()
    resumed = make_run(adapter, bench, tmp_path / "runs")
    after = resumed.generation_timings()
    assert after[:3] == before
    assert len(after) == 4 and after[3]["images"] == 4  # the whole batch is made again, two of its images kept
    assert [tuple(k) for k in after[3]["keys"]] == [(r.prompt_index, r.sample) for r in records[:4]]


def test_a_torn_last_line_is_skipped_then_cut_by_the_next_append(adapter, bench, tmp_path):
    run = make_run(adapter, bench, tmp_path / "runs")
    log = run.path / GENERATION_LOG
    complete = run.generation_timings()
    with log.open("ab") as handle:
        handle.write(b'{"images": 4, "seco')  # a crash in the middle of a line
    assert run.generation_timings() == complete
    run.image_path(run.records()[0]).unlink()
    resumed = make_run(adapter, bench, tmp_path / "runs")
    assert resumed.generation_timings()[:3] == complete and len(resumed.generation_timings()) == 4
    assert all(json.loads(line) for line in log.read_text().splitlines())  # the fragment is gone


@pytest.mark.parametrize("bad", [b"not json", b'{"images": 0, "seconds": 1, "device": "cpu", "keys": []}',
                                 b'{"images": 1, "seconds": -1, "device": "cpu", "keys": [[0, 0]]}',
                                 b'{"images": 2, "seconds": 1, "device": "cpu", "keys": [[0, 0]]}',
                                 b'[1, 2]'])
def test_a_bad_complete_line_is_an_error_naming_it(adapter, bench, tmp_path, bad):
    run = make_run(adapter, bench, tmp_path / "runs")
    log = run.path / GENERATION_LOG
    lines = log.read_bytes().split(b"\n")
    log.write_bytes(b"\n".join([lines[0], bad, *lines[1:]]))
    with pytest.raises(EvalkitError, match=f"{GENERATION_LOG}, line 2: not a generation timing entry"):
        run.generation_timings()


def test_a_run_without_the_log_has_no_timings(adapter, bench, tmp_path):
    run = make_run(adapter, bench, tmp_path / "runs")
    (run.path / GENERATION_LOG).unlink()
    assert run.generation_timings() == []
    assert generation_efficiency([]) == {"n_batches": 0, "n_images": 0, "seconds_total": 0,
                                         "seconds_per_image": None, "denoised_seconds_per_image": None,
                                         "devices": []}


def entry(images, seconds, device="cpu"):
    return {"images": images, "seconds": seconds, "device": device, "keys": [[0, i] for i in range(images)],
            "at": "2026-12-01T00:00:00+00:00"}


def test_efficiency_median_and_denoised_minimum_of_seconds_per_image():
    timings = [entry(4, 2.0), entry(4, 1.0), entry(2, 1.5), entry(4, 8.0)]  # the last: another job shared the CPU
    rates = [0.5, 0.25, 0.75, 2.0]
    summary = generation_efficiency(timings)
    assert summary["seconds_per_image"] == pytest.approx(statistics.median(rates)) == pytest.approx(0.625)
    assert summary["denoised_seconds_per_image"] == pytest.approx(0.25)
    assert (summary["n_batches"], summary["n_images"], summary["devices"]) == (4, 14, ["cpu"])
    assert summary["seconds_total"] == pytest.approx(12.5)
    assert "by_device" not in summary


def test_efficiency_per_device_when_a_run_was_resumed_elsewhere():
    summary = generation_efficiency([entry(4, 4.0, "cpu"), entry(4, 0.4, "cuda:0"), entry(4, 0.8, "cuda:0")])
    assert summary["devices"] == ["cpu", "cuda:0"]
    assert summary["by_device"]["cpu"]["seconds_per_image"] == pytest.approx(1.0)
    assert summary["by_device"]["cuda:0"]["seconds_per_image"] == pytest.approx(0.15)
    assert summary["by_device"]["cuda:0"]["denoised_seconds_per_image"] == pytest.approx(0.1)


class _Adapter:
    name, default_size = "x", (8, 8)


@pytest.mark.parametrize("device, expected", [("cuda:1", "cuda:1"), ("", "unknown"), (None, "unknown"),
                                              (3, "unknown")])
def test_adapter_device_is_optional(device, expected):
    adapter = _Adapter()
    adapter.device = device
    assert adapter_device(adapter) == expected
    assert adapter_device(_Adapter()) == "unknown"


def test_builtin_adapters_say_where_they_compute(tmp_path):
    from PIL import Image

    from evalkit.adapters.folder import FolderAdapter

    Image.new("RGB", (8, 8)).save(tmp_path / "00000_00.png")
    assert adapter_device(FolderAdapter(AdapterOptions(model_path=str(tmp_path)))) == "none"
