"""Item 4: only a study's own run images can be served, whatever the database or a request says; raters only
reach their own data; the admin check is strict."""

from __future__ import annotations

import os
import sqlite3

import pytest

from evalkit.errors import EvalkitError
from evalkit.rating import db, session
from evalkit.rating.build import create_study
from evalkit.rating.images import PNG_MAGIC, image_bytes


@pytest.fixture
def study(two_runs, tmp_path):
    path = tmp_path / "study.sqlite"
    create_study(path, two_runs, ["quality", "alignment"], control_fraction=0.2)
    return path


def _tamper(path, sql, *params):
    """Edit the database behind the app's back, as a hostile config or a bad build might."""
    raw = sqlite3.connect(path)
    raw.execute(sql, params)
    raw.commit()
    raw.close()


def test_every_registered_image_serves_as_png(study):
    conn = db.connect(study)
    ids = [r[0] for r in conn.execute("SELECT image_id FROM images")]
    assert ids and all(image_bytes(conn, image_id).startswith(PNG_MAGIC) for image_id in ids)
    assert conn.execute("SELECT COUNT(*) FROM images WHERE png IS NOT NULL").fetchone()[0] > 0  # noise controls


@pytest.mark.parametrize("request_id", ["../../etc/passwd", "/etc/passwd", "images/00000_00.png", "", "x" * 5000])
def test_unknown_ids_and_paths_as_ids_are_refused(study, request_id):
    conn = db.connect(study)
    with pytest.raises(EvalkitError, match="unknown image"):
        image_bytes(conn, request_id)


def test_paths_escaping_the_run_images_are_refused(study, tmp_path, two_runs):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_MAGIC + b"not for raters")
    conn = db.connect(study)
    image_id = conn.execute("SELECT image_id FROM images WHERE path IS NOT NULL LIMIT 1").fetchone()[0]
    hostile = ["../secret.png", str(secret), "images/../../secret.png", "manifest.json", "index.csv",
               "images/../manifest.json"]
    for path in hostile:
        _tamper(study, "UPDATE images SET path = ? WHERE image_id = ?", path, image_id)
        with pytest.raises(EvalkitError, match="refusing"):
            image_bytes(conn, image_id)


def test_run_path_pointing_elsewhere_is_refused(study, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "images").mkdir(parents=True)
    (outside / "images" / "00000_00.png").write_bytes(PNG_MAGIC + b"x")
    conn = db.connect(study)
    _tamper(study, "UPDATE models SET run_path = ?", str(outside))
    image_id = conn.execute("SELECT image_id FROM images WHERE path = 'images/00000_00.png' LIMIT 1").fetchone()[0]
    with pytest.raises(EvalkitError, match="not an evalkit run"):
        image_bytes(conn, image_id)
    _tamper(study, "UPDATE models SET run_path = '/'")
    with pytest.raises(EvalkitError, match="refusing"):
        image_bytes(conn, image_id)


def test_symlink_out_of_run_images_is_refused(study, tmp_path, two_runs):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_MAGIC + b"not for raters")
    link = two_runs[0] / "images" / "00000_00.png"
    link.unlink()
    os.symlink(secret, link)
    conn = db.connect(study)
    image_id = conn.execute(
        "SELECT i.image_id FROM images i JOIN models m USING (model_id) WHERE m.run_id = 'run-alpha'"
        " AND i.path = 'images/00000_00.png'").fetchone()[0]
    with pytest.raises(EvalkitError, match="refusing"):
        image_bytes(conn, image_id)


def test_non_png_content_is_refused(study, two_runs):
    (two_runs[0] / "images" / "00001_00.png").write_text("#!/bin/sh\necho not an image\n")
    conn = db.connect(study)
    image_id = conn.execute(
        "SELECT i.image_id FROM images i JOIN models m USING (model_id) WHERE m.run_id = 'run-alpha'"
        " AND i.path = 'images/00001_00.png'").fetchone()[0]
    with pytest.raises(EvalkitError, match="not a PNG"):
        image_bytes(conn, image_id)


def test_image_ids_are_opaque(study):
    conn = db.connect(study)
    for image_id, path in conn.execute("SELECT image_id, path FROM images"):
        assert "run" not in image_id and "/" not in image_id and len(image_id) >= 16


def test_rater_view_carries_no_model_or_path(study):
    conn = db.connect(study)
    rater = session.sign_in(conn, "alice")
    view = session.next_trial(conn, rater)
    text = repr(view)
    assert "run-alpha" not in text and "run-beta" not in text and "images/" not in text
    assert set(vars(view)) == {"trial_id", "prompt", "left_images", "right_images"}


def test_rater_id_rules(study):
    conn = db.connect(study)
    for bad in ["", "a", "../../x", "x" * 65, "name with spaces", "<script>"]:
        with pytest.raises(EvalkitError):
            session.sign_in(conn, bad)


@pytest.mark.parametrize("given,expected,ok", [
    ("tok-" * 5, "tok-" * 5, True), ("tok-" * 5, "tok-" * 4 + "tox-", False),
    ("", "tok-" * 5, False), (None, "tok-" * 5, False), ("anything", None, False), ("", "", False),
])
def test_admin_token_check(given, expected, ok):
    assert session.check_token(given, expected) is ok
