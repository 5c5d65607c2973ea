import csv
import hashlib

import pytest
from PIL import Image

from evalkit.adapters import AdapterOptions, create_adapter
from evalkit.benchmarks.registry import load_benchmark, select_subset
from evalkit.runs.pipeline import finish_run, generate_missing, prepare_run
from evalkit.runs.spec import RunSpec, image_seed
from evalkit.runs.store import open_run
from tests import fake_plugin

TRICKY = 'A sign that says "Hi, there", in Schönhausen\'s café'


@pytest.fixture
def adapter(tmp_path_factory):
    fake_plugin.install(tmp_path_factory.mktemp("plugin"))
    return create_adapter("fake", AdapterOptions())


@pytest.fixture
def bench(tmp_path):
    path = tmp_path / "prompts.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "category"])
        writer.writerow([TRICKY, "Text"])
        for i in range(5):
            writer.writerow([f"prompt number {i}", "Other"])
    return load_benchmark("file", str(path))


def _run(adapter, bench, out, *, seed=0, per_prompt=2, batch_size=3, limit=None):
    rows = select_subset(bench.rows, limit)
    spec = RunSpec(bench.name, bench.content_hash, adapter.name, adapter.config(), None, per_prompt, seed, 16, 16,
                   tuple(r.index for r in rows))
    run, missing = prepare_run(out, spec, bench, adapter, rows)
    written = generate_missing(run, adapter, missing, batch_size, progress=False)
    finish_run(run)
    return run, written


def _digests(run):
    return {r.file: hashlib.sha256(run.image_path(r).read_bytes()).hexdigest() for r in run.records()}


def test_a_run_writes_every_image_a_manifest_and_an_index(adapter, bench, tmp_path):
    run, written = _run(adapter, bench, tmp_path / "runs")
    assert written == 12
    reopened = open_run(run.path)
    assert reopened.manifest["status"] == "complete" and reopened.manifest["n_images"] == 12
    assert reopened.manifest["benchmark"]["content_hash"] == bench.content_hash
    assert reopened.manifest["versions"]["torch"]
    records = reopened.records()
    assert [(r.prompt_index, r.sample) for r in records[:3]] == [(0, 0), (0, 1), (1, 0)]
    assert records[0].prompt == TRICKY and records[0].category == "Text"
    for record in records:
        with Image.open(reopened.image_path(record)) as image:
            assert image.size == (16, 16) and image.mode == "RGB"


def test_the_same_spec_reuses_the_run_and_generates_nothing(adapter, bench, tmp_path):
    first, _ = _run(adapter, bench, tmp_path / "runs")
    second, written = _run(adapter, bench, tmp_path / "runs")
    assert second.path == first.path and written == 0


def test_same_seed_same_bytes_and_batch_size_does_not_matter(adapter, bench, tmp_path):
    a, _ = _run(adapter, bench, tmp_path / "a", batch_size=1)
    b, _ = _run(adapter, bench, tmp_path / "b", batch_size=5)
    c, _ = _run(adapter, bench, tmp_path / "c", seed=1)
    assert _digests(a) == _digests(b)
    assert _digests(a) != _digests(c)
    assert a.run_id == b.run_id != c.run_id


def test_missing_images_and_stale_temp_files_are_repaired_on_rerun(adapter, bench, tmp_path):
    run, _ = _run(adapter, bench, tmp_path / "runs")
    reference = _digests(run)
    records = run.records()
    run.image_path(records[4]).unlink()
    (run.path / "images" / ".tmp-half-written.png").write_bytes(b"\x89PNG partial")
    _, written = _run(adapter, bench, tmp_path / "runs")
    assert written == 1
    assert _digests(open_run(run.path)) == reference
    assert not list((run.path / "images").glob(".tmp-*"))


class BatchShapedAdapter:
    """An image that depends on its batch-mates, as bfloat16 or GPU kernels that choose by batch shape make it."""

    name = "batch-shaped"
    default_size = (16, 16)

    def __init__(self):
        self.batches = []

    def config(self):
        return {"kind": "batch-shaped"}

    def checkpoint_hash(self):
        return None

    def generate(self, batch):
        self.batches.append(batch.keys)
        return [Image.new("RGB", (batch.width, batch.height), (seed % 200, len(batch.seeds), sum(batch.seeds) % 251))
                for seed in batch.seeds]


@pytest.mark.parametrize("lost", [[4], [1, 2, 7], [0, 11], list(range(12))])
def test_a_resumed_run_makes_each_image_in_the_batch_an_uninterrupted_run_made_it_in(bench, tmp_path, lost):
    shaped = BatchShapedAdapter()
    reference = _digests(_run(shaped, bench, tmp_path / "once", batch_size=5)[0])
    run, _ = _run(shaped, bench, tmp_path / "resumed", batch_size=5)
    records = run.records()
    for index in lost:
        run.image_path(records[index]).unlink()
    shaped.batches.clear()
    _, written = _run(shaped, bench, tmp_path / "resumed", batch_size=5)
    assert written == len(lost) and _digests(open_run(run.path)) == reference
    plan = [(r.prompt_index, r.sample) for r in records]
    assert shaped.batches == [tuple(plan[k : k + 5]) for k in range(0, 12, 5) if set(range(k, k + 5)) & set(lost)]


def test_image_seeds_are_stable_per_prompt_and_sample():
    assert image_seed(0, 3, 1) == image_seed(0, 3, 1)
    seeds = {image_seed(0, p, s) for p in range(200) for s in range(8)}
    assert len(seeds) == 1600 and all(0 <= s < 2**31 for s in seeds)


def test_written_files_get_ordinary_permissions(tmp_path):
    from evalkit import atomic

    atomic.write_text(tmp_path / "x.json", "{}")
    (tmp_path / "plain.json").write_text("{}")
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == (tmp_path / "plain.json").stat().st_mode & 0o777
