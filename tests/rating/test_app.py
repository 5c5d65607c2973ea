"""Rater and admin flows through Streamlit's AppTest (no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from evalkit.rating import db
from evalkit.rating.build import create_study
from evalkit.rating.session import create_invitations

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ADMIN_TOKEN = "a-long-admin-token-for-tests-123"


@pytest.fixture
def study(two_runs, tmp_path, monkeypatch) -> Path:
    path = tmp_path / "study.sqlite"
    create_study(path, two_runs, ["quality", "alignment"], set_size=4, control_fraction=0.25)
    monkeypatch.setenv("EVALKIT_STUDY_DB", str(path))
    monkeypatch.delenv("EVALKIT_ADMIN_TOKEN", raising=False)
    return path


def start() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def sign_in(at: AppTest, text: str) -> AppTest:
    at.text_input(key="sign_in_text").input(text)
    return button(at, "Start").click().run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def page_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [b.label for b in at.button]
    parts += [e.value for e in at.error] + [t.value for t in at.title]
    return "\n".join(str(p) for p in parts)


def image_urls(at: AppTest) -> list[str]:
    return [image.proto.imgs[0].url for image in at.get("image")]


def answer_button(at: AppTest, question: str, answer: str):
    return next(b for b in at.button if b.key and b.key.endswith(f"-{question}-{answer}"))


def vote(at: AppTest, answer: str = "left") -> AppTest:
    for question in ("quality", "alignment"):
        at = answer_button(at, question, answer).click().run()
    return button(at, "Submit and next").click().run()


def votes(path: Path) -> list[dict]:
    conn = db.connect(path)
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM votes ORDER BY vote_id")]
    finally:
        conn.close()


def test_rater_sees_prompt_two_sets_and_questions_but_no_model_names(study):
    at = sign_in(start(), "alice")
    assert not at.exception
    text = page_text(at)
    assert "a made-up test prompt number" in text
    assert "Which set of images is of higher quality?" in text
    assert "better represents the text caption" in text
    assert len(image_urls(at)) == 8  # 4 per side
    answers = [b.label for b in at.button if b.key and b.key.startswith("answer-")]
    assert answers == ["◀ Left set", "Indifferent", "Right set ▶"] * 2
    assert "run-alpha" not in text and "run-beta" not in text and "images/" not in text
    assert all(url.startswith("/mock/media/") and "run-" not in url for url in image_urls(at))
    assert "0 / " in at.get("progress")[0].proto.text


def test_votes_are_recorded_with_sides_and_progress_advances(study):
    at = sign_in(start(), "alice")
    first_images = image_urls(at)
    at = vote(at, "left")
    assert not at.exception
    rows = votes(study)
    assert len(rows) == 2 and {r["question"] for r in rows} == {"quality", "alignment"}
    # "left" is stored as whichever canonical side was on the left for this rater and trial
    assert all(r["choice"] == r["left_side"] for r in rows)
    assert "1 / " in at.get("progress")[0].proto.text
    assert image_urls(at) != first_images


def test_refresh_shows_same_trial_with_same_sides_and_unanswered_submit_is_refused(study):
    at = sign_in(start(), "bob")
    before = image_urls(at)
    at.run()  # a rerun is what a browser refresh triggers for this session
    assert image_urls(at) == before
    at = answer_button(at, "quality", "tie").click().run()
    assert answer_button(at, "quality", "tie").proto.type == "primary"  # the choice is shown
    at = button(at, "Submit and next").click().run()
    assert any("answer every question" in w.value for w in at.warning)
    assert votes(study) == []


def test_no_trial_is_shown_twice_and_rater_finishes(study):
    at = sign_in(start(), "carol")
    conn = db.connect(study)
    total = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    conn.close()
    for _ in range(total):
        at = vote(at, "tie")
    assert any("All done" in s.value for s in at.success)
    rows = votes(study)
    assert len(rows) == 2 * total and len({r["trial_id"] for r in rows}) == total


def test_invite_only_study_needs_a_token(two_runs, tmp_path, monkeypatch):
    path = tmp_path / "invite.sqlite"
    create_study(path, two_runs, ["quality"], invite_only=True)
    monkeypatch.setenv("EVALKIT_STUDY_DB", str(path))
    conn = db.connect(path)
    [(rater_id, token)] = create_invitations(conn, 1)
    conn.close()
    at = sign_in(start(), "mallory")
    assert any("invitation only" in e.value for e in at.error)
    at = sign_in(start(), rater_id)  # an invited rater's id is not a password
    assert any("invitation" in e.value for e in at.error)
    at = sign_in(start(), "inv-not-a-real-token")
    assert any("unknown invitation token" in e.value for e in at.error)
    at = sign_in(start(), token)
    assert not at.error and len(image_urls(at)) == 8
    assert any(rater_id in c.value for c in at.caption)


def test_admin_page_absent_without_configured_token(study):
    at = sign_in(start(), "alice")
    vote(at)
    at = start()
    assert not [t for t in at.text_input if t.key == "admin_token_input"]
    assert "admin" not in page_text(at).lower() and not at.dataframe


def test_admin_page_only_with_the_right_token(study, monkeypatch):
    vote(sign_in(start(), "alice"))
    monkeypatch.setenv("EVALKIT_ADMIN_TOKEN", ADMIN_TOKEN)
    at = start()
    at.text_input(key="admin_token_input").input("wrong-token-wrong-token").run()
    assert not at.dataframe and "run-alpha" not in page_text(at)
    assert any("wrong admin token" in e.value for e in at.sidebar.error)
    at.text_input(key="admin_token_input").input(ADMIN_TOKEN).run()
    assert not at.exception
    assert "run-alpha" in page_text(at) and "admin" in page_text(at).lower()
    assert len(at.dataframe) == 2  # per-category progress, per-rater control pass rates
    raters = at.dataframe[1].value
    assert list(raters["rater_id"]) == ["alice"] and int(raters["votes"].iloc[0]) == 2
    at = button(at, "Compute preference table (bootstrap, a few seconds)").click().run()
    assert "A = run-alpha  vs  B = run-beta" in at.code[0].value


def test_short_admin_token_is_refused(study, monkeypatch):
    monkeypatch.setenv("EVALKIT_ADMIN_TOKEN", "short")
    at = start()
    assert any("at least 16 characters" in e.value for e in at.error)


def test_query_parameters_open_nothing(study, monkeypatch):
    monkeypatch.setenv("EVALKIT_ADMIN_TOKEN", ADMIN_TOKEN)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"admin": "1", "token": ADMIN_TOKEN, "file": "/etc/passwd", "image": "../../x.png"})
    at.run()
    assert not at.exception and not at.dataframe and not at.get("image")
    assert "run-alpha" not in page_text(at) and "root:" not in page_text(at)


def test_prompt_markup_is_shown_as_text(tmp_path, monkeypatch):
    from tests.rating.conftest import make_run

    hostile = "a cat ![x](http://example.invalid/{}.png) [click](http://example.invalid) **bold**"
    runs = [make_run(tmp_path, name, prompts=2, prompt_format=hostile) for name in ("run-alpha", "run-beta")]
    path = tmp_path / "markup.sqlite"
    create_study(path, runs, ["quality", "alignment"], control_fraction=0)
    monkeypatch.setenv("EVALKIT_STUDY_DB", str(path))
    at = sign_in(start(), "alice")
    rendered = "\n".join(m.value for m in at.markdown)
    assert "a cat" in rendered
    assert "![x](" not in rendered and "[click](" not in rendered and "**bold**" not in rendered


def test_unservable_image_is_reported_not_shown(study, two_runs):
    (two_runs[0] / "images" / "00000_00.png").write_text("not an image")
    at = sign_in(start(), "alice")
    for _ in range(8):  # walk trials until prompt 0 comes up
        if any("image unavailable" in e.value for e in at.error):
            break
        at = vote(at, "tie")
    assert not at.exception
    assert [e.value for e in at.error] == ["image unavailable: refusing to serve a file that is not a PNG image"]
    assert len(image_urls(at)) == 7
