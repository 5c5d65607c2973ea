"""Fake runs for rating tests: small solid-colour PNGs, made-up prompts, two DrawBench-like categories."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from evalkit.runs.store import ImageRecord, Run, image_file

CATEGORIES = ["Colors", "Counting"]


def make_run(root: Path, run_id: str, prompts: int = 6, samples: int = 4, colour=(200, 30, 30),
             benchmark="fakebench", content_hash="hash-1", size: int = 32,
             prompt_format: str = "a made-up test prompt number {}") -> Path:
    path = root / run_id
    records = [
        ImageRecord(
            prompt_index=p, sample=s, seed=p * 100 + s, file=image_file(p, s),
            prompt=prompt_format.format(p), category=CATEGORIES[p % len(CATEGORIES)],
        )
        for p in range(prompts) for s in range(samples)
    ]
    manifest = {"run_id": run_id, "benchmark": {"name": benchmark, "content_hash": content_hash},
                "adapter": {"name": "fake", "config": {}, "checkpoint_hash": None}}
    run = Run.create(path, manifest, records)
    for record in records:
        shade = (colour[0], (colour[1] + 25 * record.prompt_index) % 256, (colour[2] + 20 * record.sample) % 256)
        run.save_image(record, Image.new("RGB", (size, size), shade))
    return path


@pytest.fixture
def two_runs(tmp_path) -> list[Path]:
    return [make_run(tmp_path, "run-alpha", colour=(200, 30, 30)), make_run(tmp_path, "run-beta", colour=(30, 30, 200))]
