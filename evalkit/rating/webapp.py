"""The Streamlit study app: rater pages, and an admin page that exists only for a matching admin token.

    streamlit run app.py -- --db study.sqlite [--admin-token TOKEN]     (or EVALKIT_STUDY_DB / EVALKIT_ADMIN_TOKEN)

Raters see prompts and images, never run names, paths or other raters' votes: images reach the browser as bytes
looked up by opaque id (``images.image_bytes``), and every query here is scoped to the signed-in rater.
"""

from __future__ import annotations

import argparse
import os
import sys

import streamlit as st

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.rating.images import image_bytes
from evalkit.rating.questions import question_text
from evalkit.rating.session import check_token, next_trial, progress, record_answers, sign_in

ANSWER_LABELS = {"left": "◀ Left set", "tie": "Indifferent", "right": "Right set ▶"}
MIN_ADMIN_TOKEN = 16


def settings(argv: list[str] | None = None) -> tuple[str, str | None]:
    parser = argparse.ArgumentParser(prog="streamlit run app.py --")
    parser.add_argument("--db", default=os.environ.get("EVALKIT_STUDY_DB"))
    parser.add_argument("--admin-token", default=os.environ.get("EVALKIT_ADMIN_TOKEN"))
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if not args.db:
        raise EvalkitError("no study database: pass `-- --db study.sqlite` or set EVALKIT_STUDY_DB")
    token = args.admin_token or None
    if token is not None and len(token) < MIN_ADMIN_TOKEN:
        raise EvalkitError(f"the admin token must be at least {MIN_ADMIN_TOKEN} characters; admin page disabled")
    return args.db, token


def main() -> None:
    st.set_page_config(page_title="Image rating study", page_icon="🖼", layout="wide")
    try:
        db_path, admin_token = settings()
        conn = db.connect(db_path)
    except EvalkitError as error:
        st.error(str(error))
        return
    try:
        if _admin_signed_in(admin_token):
            from evalkit.rating.admin_page import render_admin

            render_admin(conn)
        else:
            _rater_page(conn)
    finally:
        conn.close()


def _admin_signed_in(admin_token: str | None) -> bool:
    """The admin form is shown only when a token is configured; the page only when it matches."""
    if admin_token is None:
        return False
    with st.sidebar.expander("Study admin"):
        given = st.text_input("Admin token", type="password", key="admin_token_input")
    ok = check_token(given, admin_token)
    if given and not ok:
        st.sidebar.error("wrong admin token")
    return ok


def _rater_page(conn) -> None:
    rater_id = st.session_state.get("rater_id")
    if not rater_id:
        _sign_in_form(conn)
        return
    with st.sidebar:
        st.caption(f"Signed in as **{rater_id}**")
        if st.button("Sign out", key="sign_out"):
            st.session_state.pop("rater_id", None)
            st.rerun()
    try:
        view = next_trial(conn, rater_id)
    except EvalkitError as error:
        st.error(str(error))
        st.session_state.pop("rater_id", None)
        return
    done, total = progress(conn, rater_id)
    st.progress(min(done / total, 1.0) if total else 1.0, text=f"{done} / {total} done")
    if view is None:
        st.success("All done, thank you! You can close this tab.")
        return
    _trial(conn, rater_id, view)


def _sign_in_form(conn) -> None:
    st.title("Image rating study")
    st.write("You will see a text prompt and two sets of images made from it. For each pair, answer which set is "
             "of higher quality and which better matches the text. There are no right answers for most trials; "
             "go with your first impression.")
    with st.form("sign_in"):
        text = st.text_input("Your rater id or invitation token", key="sign_in_text")
        if st.form_submit_button("Start", type="primary"):
            try:
                st.session_state["rater_id"] = sign_in(conn, text)
            except EvalkitError as error:
                st.error(str(error))
                return
            st.rerun()


def _image_grid(conn, image_ids: list[str]) -> None:
    per_row = 2 if len(image_ids) <= 4 else 4
    for start in range(0, len(image_ids), per_row):
        columns = st.columns(per_row)
        for column, image_id in zip(columns, image_ids[start:start + per_row]):
            # PNG, not Streamlit's default JPEG re-encoding: compression artefacts would bias quality judgements
            column.image(image_bytes(conn, image_id), width="stretch", output_format="PNG")


def _trial(conn, rater_id: str, view) -> None:
    questions = db.read_config(conn)["questions"]
    st.markdown(f"#### Prompt: “{view.prompt}”")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Left set**")
        _image_grid(conn, view.left_images)
    with right:
        st.markdown("**Right set**")
        _image_grid(conn, view.right_images)
    with st.form(f"trial-{view.trial_id}", border=True):
        answers = {}
        for question in questions:
            answers[question] = st.radio(
                question_text(question, view.prompt), list(ANSWER_LABELS), index=None, horizontal=True,
                format_func=ANSWER_LABELS.get, key=f"q-{view.trial_id}-{question}",
            )
        st.caption("Keyboard: Tab moves between questions, arrow keys choose, Enter submits.")
        submitted = st.form_submit_button("Submit and next", type="primary", shortcut="Enter")
    if submitted:
        if any(answer is None for answer in answers.values()):
            st.warning("Please answer every question before submitting.")
            return
        record_answers(conn, rater_id, view.trial_id, answers)
        st.rerun()
