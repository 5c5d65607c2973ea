"""Create a study from runs: one trial per (prompt, model pair), plus control trials with a known answer.

Runs are matched by prompt_index and must come from the same benchmark content (same content hash), otherwise
the "same prompt" in two runs could be different text. A prompt takes part only if every run has at least
``set_size`` finished images for it.

Controls (gold trials), as in the Imagen COCO study, let us drop inattentive raters:
  * noise: one side is a model's real set, the other random-noise images -> the real side wins both questions;
  * other-prompt: one side is the model's set for this prompt, the other the same model's set for another
    prompt -> the matching side wins "alignment" (quality has no right answer there).
"""

from __future__ import annotations

import io
import itertools
import json
import random
import secrets
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.runs.store import ImageRecord, Run, open_run


def _image_sets(run: Run, set_size: int) -> dict[int, list[ImageRecord]]:
    by_prompt: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in run.completed_records():
        by_prompt[record.prompt_index].append(record)
    return {
        index: sorted(records, key=lambda r: r.sample)[:set_size]
        for index, records in by_prompt.items()
        if len(records) >= set_size
    }


def _check_same_benchmark(runs: list[Run]) -> dict[str, Any]:
    first = runs[0].manifest.get("benchmark", {})
    for run in runs[1:]:
        other = run.manifest.get("benchmark", {})
        if (other.get("name"), other.get("content_hash")) != (first.get("name"), first.get("content_hash")):
            raise EvalkitError(
                f"runs {runs[0].run_id} and {run.run_id} are on different benchmarks "
                f"({first.get('name')}@{str(first.get('content_hash'))[:12]} vs "
                f"{other.get('name')}@{str(other.get('content_hash'))[:12]}); a study compares the same prompts"
            )
    return {"name": first.get("name"), "content_hash": first.get("content_hash")}


def noise_png(rng: np.random.Generator, size: tuple[int, int]) -> bytes:
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def create_study(
    db_path: str | Path,
    run_paths: list[str | Path],
    questions: list[str],
    set_size: int = 4,
    control_fraction: float = 0.1,
    control_threshold: float = 0.8,
    seed: int = 0,
    invite_only: bool = False,
    trials_per_rater: int | None = None,
    replace: bool = False,
    durable: bool = False,
) -> dict[str, Any]:
    """Write a new study into ``db_path`` and return its config. Refuses to touch a study that has votes.
    ``durable``: every connection to the study fsyncs each vote (SQLite ``synchronous=FULL``, see ``db``)."""
    if len(run_paths) < 2:
        raise EvalkitError("a study needs at least two runs (--runs RUN_A RUN_B ...)")
    if not 0 <= control_fraction < 1:
        raise EvalkitError(f"--control-fraction must be in [0, 1), got {control_fraction}")
    if not 0 <= control_threshold <= 1:
        raise EvalkitError(f"--control-threshold must be in [0, 1], got {control_threshold}")
    runs = [open_run(path) for path in run_paths]
    ids = [run.run_id for run in runs]
    if len(set(ids)) != len(ids):
        raise EvalkitError(f"the same run is listed twice in --runs: {ids}")
    benchmark = _check_same_benchmark(runs)
    sets = [_image_sets(run, set_size) for run in runs]
    common = sorted(set.intersection(*(set(s) for s in sets)))
    if not common:
        raise EvalkitError(f"no prompt has {set_size} finished images in every run; lower --set-size or finish the runs")
    for index in common:
        texts = {s[index][0].prompt for s in sets}
        if len(texts) != 1:
            raise EvalkitError(f"prompt {index} has different text in different runs; the runs do not match")

    db_path = Path(db_path)
    if db_path.exists():
        conn = db.connect(db_path)
        votes = db.vote_count(conn)
        conn.close()
        if votes:
            raise EvalkitError(f"{db_path} already holds a study with {votes} votes; it is frozen (use a new --db)")
        if not replace:
            raise EvalkitError(f"{db_path} already exists; pass --force to replace its (vote-less) study")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)

    rng = random.Random(seed)
    noise_rng = np.random.default_rng(seed)
    config = {
        "study_id": secrets.token_hex(6),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "benchmark": benchmark,
        "runs": ids,
        "questions": questions,
        "set_size": set_size,
        "seed": seed,
        "control_fraction": control_fraction,
        "control_threshold": control_threshold,
        "invite_only": invite_only,
        "trials_per_rater": trials_per_rater,
        "durable": durable,
        "prompts": len(common),
    }
    conn = db.connect(db_path, create=True)
    try:
        with db.write(conn):
            conn.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps(config, sort_keys=True),))
            for model_id, run in enumerate(runs):
                conn.execute("INSERT INTO models VALUES (?, ?, ?)", (model_id, run.run_id, str(run.path.resolve())))
            image_ids: dict[tuple[int, int], list[str]] = {}
            for model_id, model_sets in enumerate(sets):
                for index in common:
                    image_ids[model_id, index] = []
                    for record in model_sets[index]:
                        image_id = secrets.token_urlsafe(12)
                        conn.execute(
                            "INSERT INTO images (image_id, model_id, path) VALUES (?, ?, ?)",
                            (image_id, model_id, record.file),
                        )
                        image_ids[model_id, index].append(image_id)

            def add_trial(kind, index, model_a, model_b, side_a, side_b, control_kind=None, expected=None):
                record = sets[0][index][0]
                cursor = conn.execute(
                    "INSERT INTO trials (kind, prompt_index, prompt, category, model_a, model_b, control_kind, expected)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (kind, index, record.prompt, record.category, model_a, model_b, control_kind,
                     json.dumps(expected or {}, sort_keys=True)),
                )
                for side, images in (("A", side_a), ("B", side_b)):
                    for position, image_id in enumerate(images):
                        conn.execute("INSERT INTO trial_images VALUES (?, ?, ?, ?)",
                                     (cursor.lastrowid, side, position, image_id))

            real = 0
            for index in common:
                for model_a, model_b in itertools.combinations(range(len(runs)), 2):
                    add_trial("real", index, model_a, model_b, image_ids[model_a, index], image_ids[model_b, index])
                    real += 1

            n_controls = round(real * control_fraction / (1 - control_fraction)) if control_fraction else 0
            kinds = ["noise", "other-prompt"] if "alignment" in questions and len(common) > 1 else ["noise"]
            width, height = _image_size(runs[0], sets[0][common[0]][0])
            for number in range(n_controls):
                kind = kinds[number % len(kinds)]
                index, model = rng.choice(common), rng.randrange(len(runs))
                good = image_ids[model, index]
                if kind == "noise":
                    bad = []
                    for _ in range(set_size):
                        image_id = secrets.token_urlsafe(12)
                        conn.execute("INSERT INTO images (image_id, png) VALUES (?, ?)",
                                     (image_id, noise_png(noise_rng, (width, height))))
                        bad.append(image_id)
                    answers = dict.fromkeys(questions)
                else:
                    bad = image_ids[model, rng.choice([i for i in common if i != index])]
                    answers = {"alignment": None}
                good_side = rng.choice("AB")
                expected = {question: good_side for question in answers}
                side_a, side_b = (good, bad) if good_side == "A" else (bad, good)
                add_trial("control", index, model, model, side_a, side_b, kind, expected)
            config["real_trials"], config["control_trials"] = real, n_controls
    finally:
        conn.close()
    return config


def _image_size(run: Run, record: ImageRecord) -> tuple[int, int]:
    with Image.open(run.image_path(record)) as image:
        width, height = image.size
    # Noise is shown at the models' size but stored small: browsers scale it, and it keeps the database light.
    return min(width, 256), min(height, 256)
