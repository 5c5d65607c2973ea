"""Sweeps among runs: detection, the table, the figures and the Pareto front, on run directories made with the
run store and metrics.json files written by the real writer (metrics_file.build / merge_and_write)."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest
from PIL import Image

from evalkit.estimate import Estimate
from evalkit.metrics import metrics_file
from evalkit.metrics.base import Stat
from evalkit.metrics.registry import load_metric
from evalkit.metrics.sides import open_side
from evalkit.metrics.toyworld import wilson
from evalkit.reports.document import Figure, Paragraph, Table
from evalkit.reports.records import read_metrics
from evalkit.reports.sweeps import find_sweeps, pareto_front, run_settings, sweep_sections
from evalkit.reports.tables import format_estimate
from evalkit.runs.store import ImageRecord, Run, image_file, open_run

PROMPTS, PER_PROMPT = 4, 2
N = PROMPTS * PER_PROMPT
# The layout of a real manifest (runs/toyworld-imagen-1cf97bf5c3be/manifest.json, trimmed of timestamps and git).
MANIFEST = {
    "adapter": {
        "checkpoint_hash": "8afeb32fc5e744b7",
        "config": {
            "checkpoint": "shipped:toyworld-32-64-128", "experts": ["base_expert"], "image_size": 128,
            "sampling": {
                "base": {"aug_level": 0.0, "guidance": 3.0, "percentile": 0.995, "sampler": "dpm++2m",
                         "start_t": 1.0, "steps": 16, "threshold": "static"},
                "sr1": {"aug_level": 0.0, "guidance": 1.0, "percentile": 0.995, "sampler": "dpm++2m",
                        "start_t": 0.5, "steps": 2, "threshold": "static"},
            },
            "stages": ["base", "sr1"],
            "text_encoder": {"dim": 768, "kind": "minilm", "layers": [-1, 0], "max_tokens": 32},
        },
        "name": "imagen",
    },
    "benchmark": {"categories": {"Colors": 2, "Counting": 2}, "name": "toyworld", "prompts": PROMPTS,
                  "content_hash": "sha256:4da7f789d4e926e589b01f9edd00c0d8120b3be2beeb965604e1e7871d50c379",
                  "source": "generated:toyworld-heldout:seed=0", "total_prompts": PROMPTS},
    "height": 32, "width": 32, "images_per_prompt": PER_PROMPT, "n_images": N, "seed": 0, "status": "complete",
    "versions": {"evalkit": "0.1.0", "python": "3.11.7"},
}
CLIP_EXTRACTOR = {"extractor": "clip", "weights_sha256": "cd" * 32, "preprocessing": {"resize": "bicubic"}}
INCEPTION = {"extractor": "inception", "weights_sha256": "ef" * 32, "preprocessing": {"resize": "torchmetrics"}}


def _set(config: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        config = config[name]
    config[leaf] = value


def _defaults(metric) -> dict:
    return {name: option.default for name, option in metric.options.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reference")
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 90, 200 - 30 * i)).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def make_run(tmp_path, reference):
    """make_run(run_id, settings={dotted: value}, clip=(v, lo, hi), fid=v, correct=k, ...) -> (manifest, RunMetrics)
    through the run store and the metrics.json writer."""

    def make(run_id: str, settings: dict | None = None, clip=(25.0, 24.0, 26.0), fid: float | None = 20.0,
             correct: int = 4, edit_manifest=None, clip_extractor=CLIP_EXTRACTOR):
        manifest = copy.deepcopy(MANIFEST)
        manifest["run_id"] = run_id
        for dotted, value in (settings or {}).items():
            _set(manifest["adapter"]["config"], dotted, value)
        if edit_manifest is not None:
            edit_manifest(manifest)
        records = [ImageRecord(p, s, 1000 * p + s, image_file(p, s), f"prompt {p}", ("Colors", "Counting")[p % 2])
                   for p in range(PROMPTS) for s in range(PER_PROMPT)]
        run = Run.create(tmp_path / run_id, manifest, records)
        for r in records:
            run.save_image(r, Image.new("RGB", (8, 8), (30 * r.prompt_index, 20 * r.sample, len(run_id) * 9 % 256)))
        toyworld, clip_metric, fid_metric = (load_metric(n) for n in ("toyworld", "clip", "fid"))
        clip_estimate = Estimate(clip[0], clip[1], clip[2], N, "bootstrap-prompts")
        results = [(toyworld, _defaults(toyworld), [Stat("toyworld.all", wilson(correct, N))]),
                   (clip_metric, _defaults(clip_metric), [Stat("clip", clip_estimate, extractor=clip_extractor)])]
        if fid is not None:
            fid_stat = Stat("fid", Estimate.point(fid, N), extractor=INCEPTION)
            results.append((fid_metric, _defaults(fid_metric), [fid_stat]))
        document = metrics_file.build(open_side(run.path), open_side(reference), results, [])
        metrics_file.merge_and_write(open_run(run.path), document)
        return manifest, read_metrics(run.path)

    return make


def _blocks(section, kind):
    return [b for b in section.blocks if isinstance(b, kind)]


def _decode(figure: Figure) -> Image.Image:
    image = Image.open(io.BytesIO(figure.png))
    image.load()
    assert image.format == "PNG" and image.width > 300 and image.height > 200
    return image


def test_one_differing_setting_is_a_sweep(make_run):
    # given out of order: the table and the figure follow the numeric order of the setting
    runs = [make_run(f"g{g}", {"sampling.base.guidance": float(g)}, clip=(20 + g, 19 + g, 21 + g), fid=10.0 + g,
                     correct=g) for g in (5, 1, 3)]
    [section] = sweep_sections(runs)
    assert section.anchor == "sweep-toyworld-imagen-sampling-base-guidance"
    assert section.data["field"] == "sampling.base.guidance" and section.data["kind"] == "numeric"
    assert [r["run"] for r in section.data["runs"]] == ["g1", "g3", "g5"]
    [table] = _blocks(section, Table)
    assert table.header[:2] == ("sampling.base.guidance", "run")
    assert [row[:2] for row in table.rows] == [("1", "g1"), ("3", "g3"), ("5", "g5")]
    column = {name.split(" ")[0]: i for i, name in enumerate(table.header)}
    by_run = {manifest["run_id"]: metrics for manifest, metrics in runs}
    for row in table.rows:
        for stat in ("clip", "fid", "toyworld.all"):
            assert row[column[stat]] == format_estimate(by_run[row[1]].stats[stat].overall)
    # best: clip and toyworld.all highest at g5, fid lowest at g1
    assert table.marked == {(2, column["clip"]), (2, column["toyworld.all"]), (0, column["fid"])}
    assert section.data["stats"]["clip"]["overall"][0] == by_run["g1"].stats["clip"].overall.to_json()
    figures = _blocks(section, Figure)
    assert [f.name for f in figures] == [f"{section.anchor}.png", f"{section.anchor}-pareto.png"]
    for figure in figures:
        _decode(figure)
    assert not _blocks(section, Paragraph)[1:]  # only the opening sentence: nothing was left out


def test_two_differing_settings_are_no_sweep_but_chains_are_found(make_run):
    a = make_run("a", {"sampling.base.guidance": 1.0, "sampling.base.steps": 16})
    b = make_run("b", {"sampling.base.guidance": 3.0, "sampling.base.steps": 32})
    assert find_sweeps([a, b]) == [] and sweep_sections([a, b]) == []
    c = make_run("c", {"sampling.base.guidance": 3.0, "sampling.base.steps": 16})
    found = {(s.field, tuple(r.label for r in s.runs)) for s in find_sweeps([a, b, c])}
    assert found == {("sampling.base.guidance", ("a", "c")), ("sampling.base.steps", ("c", "b"))}


@pytest.mark.parametrize("edit", [
    lambda m: m["benchmark"].update(content_hash="sha256:" + "00" * 32),
    lambda m: m["benchmark"].update(name="drawbench"),
    lambda m: m["adapter"].update(name="diffusers"),
    lambda m: m.update(seed=1),
], ids=["benchmark-hash", "benchmark-name", "adapter", "seed"])
def test_runs_of_different_groups_are_no_sweep(make_run, edit):
    a = make_run("a", {"sampling.base.guidance": 1.0})
    b = make_run("b", {"sampling.base.guidance": 3.0}, edit_manifest=edit)
    assert find_sweeps([a, b]) == []
    assert len(find_sweeps([a, b, make_run("c", {"sampling.base.guidance": 5.0})])) == 1


def test_identical_settings_and_a_repeated_run_are_no_sweep(make_run):
    a = make_run("a")
    assert find_sweeps([a, a]) == [] and find_sweeps([a, make_run("b")]) == []


def test_pareto_front_by_hand():
    # (alignment, distance): (24, 12) has the lowest distance, (27, 17) the best alignment, (26, 15) between;
    # (26.5, 19) is dominated by (27, 17), (25, 16) by (26, 15)
    points = [(24.0, 12.0), (26.0, 15.0), (27.0, 17.0), (26.5, 19.0), (25.0, 16.0)]
    assert pareto_front(points) == [0, 1, 2]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0, 1]  # equal points do not dominate each other
    assert pareto_front([(1.0, 2.0), (1.0, 1.0)]) == [1]  # same alignment, lower distance


def test_pareto_of_a_sweep(make_run):
    points = {1: (24.0, 12.0), 3: (26.0, 15.0), 5: (27.0, 17.0), 7: (26.5, 19.0)}
    runs = [make_run(f"g{g}", {"sampling.base.guidance": float(g)}, clip=(x, x - 0.5, x + 0.5), fid=y)
            for g, (x, y) in points.items()]
    [section] = sweep_sections(runs)
    assert section.data["pareto"] == {"alignment": "clip", "distance": "fid", "front": ["g1", "g3", "g5"]}
    _decode(_blocks(section, Figure)[-1])


def test_without_a_distance_stat_there_is_no_pareto_plot(make_run):
    runs = [make_run(f"s{s}", {"sampling.base.steps": s}, fid=None) for s in (8, 16)]
    [section] = sweep_sections(runs)
    assert section.data["pareto"] is None
    assert [f.name for f in _blocks(section, Figure)] == [f"{section.anchor}.png"]


def test_incomparable_stat_is_left_out_with_a_note(make_run):
    other = {**CLIP_EXTRACTOR, "preprocessing": {"resize": "bilinear"}}
    runs = [make_run("g1", {"sampling.base.guidance": 1.0}), make_run("g3", {"sampling.base.guidance": 3.0},
                                                                      clip_extractor=other)]
    [section] = sweep_sections(runs)
    [table] = _blocks(section, Table)
    assert not any(h.startswith("clip") for h in table.header) and "clip" not in section.data["stats"]
    assert "extractor.preprocessing.resize differs: bicubic (g1) vs bilinear (g3)" in section.data["left_out"]["clip"]
    notes = [p.text for p in _blocks(section, Paragraph) if p.kind == "note"]
    assert notes == ["clip is left out (comparability keys differ: extractor.preprocessing.resize differs: "
                     "bicubic (g1) vs bilinear (g3))."]
    # fid and toyworld.all are still compared; the Pareto plot falls back to the next alignment stat
    assert section.data["pareto"]["alignment"] == "toyworld.all"


def test_checkpoint_sweep_is_categorical_and_labels_stay_plain_text(make_run):
    def checkpoint(path, digest):
        return lambda m: (m["adapter"].update(checkpoint_hash=digest), _set(m["adapter"]["config"], "checkpoint", path))

    runs = [make_run("early", edit_manifest=checkpoint("runs/<b>early</b>.pt", "1111aaaa2222bbbb")),
            make_run("late", edit_manifest=checkpoint("runs/late.pt", "3333cccc4444dddd"))]
    assert "checkpoint" in run_settings(runs[0][0]) and run_settings(runs[0][0])["checkpoint"] == "1111aaaa2222bbbb"
    [section] = sweep_sections(runs)
    assert section.data["field"] == "checkpoint" and section.data["kind"] == "categorical"
    [table] = _blocks(section, Table)
    assert [row[0] for row in table.rows] == ["runs/<b>early</b>.pt (1111aaaa2222)", "runs/late.pt (3333cccc4444)"]
    for figure in _blocks(section, Figure):
        _decode(figure)
    # the same weights found at another path are the same checkpoint: no sweep
    same = make_run("moved", edit_manifest=checkpoint("elsewhere/early.pt", "1111aaaa2222bbbb"))
    assert find_sweeps([runs[0], same]) == []


def test_categorical_sampler_sweep_and_deterministic_bytes(make_run):
    runs = [make_run(name, {"sampling.base.sampler": name}, clip=(c, c - 1, c + 1), fid=f)
            for name, c, f in (("euler", 25.0, 18.0), ("ddim", 24.0, 17.0), ("dpm++2m", 26.0, 16.0))]
    first, second = sweep_sections(runs), sweep_sections(list(reversed(runs)))
    [section] = first
    assert section.data["kind"] == "categorical"
    assert [r["label"] for r in section.data["runs"]] == ["ddim", "dpm++2m", "euler"]
    assert section.data["pareto"]["front"] == ["dpm++2m"]  # best on both
    assert [f.png for f in _blocks(first[0], Figure)] == [f.png for f in _blocks(second[0], Figure)]
    assert first[0].data == second[0].data


def test_a_setting_one_config_lacks_is_swept_as_absent(make_run):
    # the imagen adapter writes "experts" only for checkpoints that have one
    runs = [make_run("plain", edit_manifest=lambda m: m["adapter"]["config"].pop("experts")), make_run("expert")]
    [section] = sweep_sections(runs)
    assert section.data["field"] == "experts" and section.data["kind"] == "categorical"
    assert [(r["label"], r["value"]) for r in section.data["runs"]] == [("absent", None),
                                                                        ("base_expert", ["base_expert"])]
