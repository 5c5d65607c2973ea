"""Section builders on hand-made records: published COCO FID-30K numbers appear only beside a coco run's FID and
say when N is not 30,000; stats whose comparability keys differ are not marked best and the warning names the
field; a best value is marked (ties included) in the stat's direction."""

from __future__ import annotations

from pathlib import Path

from evalkit.estimate import Estimate
from evalkit.reports.document import Paragraph, Table
from evalkit.reports.loading import ReportRun
from evalkit.reports.metric_tables import metric_sections
from evalkit.reports.published import MARK, PUBLISHED_COCO_FID_30K, published_section
from evalkit.reports.records import RunMetrics, StatRecord

KEY = {"benchmark": {"name": "coco", "content_hash": "sha256:" + "c" * 64}, "n_images": 500,
       "images_per_prompt": 1, "extractor": {"name": "inception", "weights_sha256": "ab" * 32,
                                             "preprocessing": {"resize": "torchmetrics"}},
       "reference": {"id": "coco_val2014_256.npz", "kind": "stats", "hash": "sha256:" + "d" * 64, "n": 40504},
       "options": {}, "evalkit_version": "0.1.0"}


def _run(label: str, benchmark: str, stats: dict[str, StatRecord]) -> ReportRun:
    path = Path("/runs") / label
    return ReportRun(path, {"run_id": label, "benchmark": {"name": benchmark}}, (),
                     RunMetrics(path / "metrics.json", label, {}, stats), label=label)


def _fid(value: float, n: int, key: dict | None = None) -> StatRecord:
    return StatRecord("fid", "fid", False, Estimate.point(value, n), {**KEY, "n_images": n, **(key or {})})


def test_published_numbers_only_beside_a_coco_fid():
    assert published_section([_run("toy", "toyworld", {"fid": _fid(3.0, 500)})]) is None
    assert published_section([_run("c", "coco", {})]) is None
    section = published_section([_run("small", "coco", {"fid": _fid(31.25, 500)}),
                                 _run("full", "coco", {"fid": _fid(12.5, 30_000, {"n_images": 30_000})})])
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert MARK in table.caption and any(MARK in b.text for b in section.blocks if isinstance(b, Paragraph))
    published = {row[0]: row[1] for row in table.rows[: len(PUBLISHED_COCO_FID_30K)]}
    assert published == {"Imagen": "7.27", "Parti-20B": "7.23", "Muse-3B": "7.88",
                         "DALL-E 2 (unCLIP, diffusion prior)": "10.39", "GLIDE": "12.24", "LDM-KL-8-G": "12.63"}
    small, full = table.rows[len(PUBLISHED_COCO_FID_30K):]
    assert small[1] == "31.2500" and "N = 500, not 30,000: not comparable" in small[3]
    assert full[1] == "12.5000" and "N = 30,000" in full[3] and "not comparable" not in full[3]
    warnings = [b.text for b in section.blocks if isinstance(b, Paragraph) and b.kind == "warning"]
    assert any("small: fid is computed on 500 images" in w for w in warnings)
    assert not any(w.startswith("full:") for w in warnings)
    assert section.data["evalkit"][0]["overall"] == {"value": 31.25, "low": None, "high": None, "n": 500,
                                                      "method": "none"}
    assert all(p.where and p.checked for p in PUBLISHED_COCO_FID_30K)


def test_different_resize_is_not_marked_and_named():
    other = {"extractor": {**KEY["extractor"], "preprocessing": {"resize": "clean"}}}
    section = metric_sections([_run("a", "coco", {"fid": _fid(20.0, 500)}),
                               _run("b", "coco", {"fid": _fid(18.0, 500, other)})])[0]
    table = section.blocks[0]
    assert table.rows[0][:2] == ("fid", "\u2193 lower") and not table.marked
    warning = next(b for b in section.blocks if isinstance(b, Paragraph) and b.kind == "warning")
    assert "extractor.preprocessing.resize differs: torchmetrics (a) vs clean (b)" in warning.text
    keys = section.blocks[-1]
    assert [row[1] for row in keys.rows] == ["a", "b"] and {row[6] for row in keys.rows} == {
        "resize=torchmetrics", "resize=clean"}


def test_best_follows_direction_and_ties():
    higher = StatRecord("clip", "clip", True, Estimate(30.0, 29.0, 31.0, 500, "bootstrap-prompts"), KEY)
    tie = StatRecord("clip", "clip", True, Estimate(30.0, 29.5, 30.5, 500, "bootstrap-prompts"), KEY)
    runs = [_run("a", "coco", {"fid": _fid(20.0, 500), "clip": higher}),
            _run("b", "coco", {"fid": _fid(18.0, 500), "clip": tie}),
            _run("c", "coco", {"fid": _fid(25.0, 500)})]
    table = metric_sections(runs)[0].blocks[0]
    stats = [row[0] for row in table.rows]
    fid, clip = stats.index("fid"), stats.index("clip")
    assert table.marked == {(fid, 3), (clip, 2), (clip, 3)}  # lowest FID (b); CLIP tied between a and b
    assert table.rows[clip][4] == "\u2014" and table.rows[clip][2] == "30.0000 [29.0000, 31.0000] \u00b7 n=500"
    assert metric_sections(runs)[0].data["stats"]["clip"]["b"]["overall"] == tie.overall.to_json()


def test_full_size_images_are_embedded_at_their_resolution(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from evalkit.reports.render_html import FULL_MAX_BYTES, full_bytes, thumbnail_bytes

    small, large = tmp_path / "small.png", tmp_path / "large.png"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(small)
    noise = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    Image.fromarray(noise).save(large)
    assert full_bytes(small) == small.read_bytes()  # a small PNG as stored
    assert large.stat().st_size > FULL_MAX_BYTES
    embedded = Image.open(io.BytesIO(full_bytes(large)))
    assert embedded.format == "JPEG" and embedded.size == (800, 600)  # re-encoded, not shrunk
    assert Image.open(io.BytesIO(thumbnail_bytes(large, 160))).size == (160, 120)
