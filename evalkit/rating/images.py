"""Serve a trial image by its opaque id, and nothing else.

The database maps an id to a path inside a run, but a database (or a config that built it) is not trusted
to say where files are: a file is served only if, after resolving symlinks and '..', it is a regular PNG
file inside the ``images/`` folder of a directory that is an evalkit run registered in this study.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from evalkit.errors import EvalkitError
from evalkit.images import PNG_MAGIC
from evalkit.runs.store import IMAGES, is_run_dir

MAX_IMAGE_BYTES = 32 * 1024 * 1024


def image_bytes(conn: sqlite3.Connection, image_id: str) -> bytes:
    row = conn.execute(
        "SELECT i.path, i.png, m.run_path FROM images i LEFT JOIN models m ON m.model_id = i.model_id"
        " WHERE i.image_id = ?",
        (str(image_id),),
    ).fetchone()
    if row is None:
        raise EvalkitError("unknown image")
    if row["png"] is not None:
        data = bytes(row["png"])
    else:
        data = _read_inside_run(row["run_path"], row["path"])
    if not data.startswith(PNG_MAGIC):
        raise EvalkitError("refusing to serve a file that is not a PNG image")
    return data


def _read_inside_run(run_path: str | None, relative: str | None) -> bytes:
    if not run_path or not relative:
        raise EvalkitError("image has no file")
    run_dir = Path(run_path).resolve()
    if not is_run_dir(run_dir):
        raise EvalkitError("refusing to serve an image from a directory that is not an evalkit run")
    allowed = run_dir / IMAGES
    target = (run_dir / relative).resolve()
    if not target.is_relative_to(allowed) or target.suffix.lower() != ".png" or not target.is_file():
        raise EvalkitError("refusing to serve a file outside the study's run images")
    if target.stat().st_size > MAX_IMAGE_BYTES:
        raise EvalkitError("image file is implausibly large")
    return target.read_bytes()
