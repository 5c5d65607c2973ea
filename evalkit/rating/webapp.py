"""The Streamlit study app: rater pages, and an admin page that exists only for a matching admin token.

    streamlit run app.py -- --db study.sqlite [--admin-token TOKEN]     (or EVALKIT_STUDY_DB / EVALKIT_ADMIN_TOKEN)

Raters see prompts and images, never run names, paths or other raters' votes: images reach the browser as bytes
looked up by opaque id (``images.image_bytes``), and every query here is scoped to the signed-in rater.
"""

from __future__ import annotations

import re
from typing import Callable

import streamlit as st

from evalkit.errors import EvalkitError
from evalkit.rating import db
from evalkit.rating.images import image_bytes
from evalkit.rating.questions import question_text
from evalkit.rating.session import (check_session, check_token, next_trial, progress, record_answers, sign_in,
                                    start_session)

ANSWER_LABELS = {"left": "◀ Left set", "tie": "Indifferent", "right": "Right set ▶"}
# One hand per question (left/indifferent/right), so a trial is three key presses: e.g. A, L, Enter.
ANSWER_KEYS = {"quality": ("A", "S", "D"), "alignment": ("J", "K", "L")}
# Streamlit's default top padding is ~6rem; reclaim it so a trial fits a laptop screen without scrolling.
COMPACT_CSS = "<style>[data-testid='stMainBlockContainer']{padding-top:3.5rem;padding-bottom:1rem}</style>"


def main(read_settings: Callable[[], tuple[str, str | None]]) -> None:
    """The app; ``read_settings`` returns (study database path, admin token or None) or raises EvalkitError, which
    the page shows (app.py passes the command-line reader from evalkit.cli.app_args)."""
    # collapsed sidebar: on a laptop screen both image sets and the questions must fit without scrolling
    st.set_page_config(page_title="Image rating study", page_icon="🖼", layout="wide",
                       initial_sidebar_state="collapsed")
    st.html(COMPACT_CSS)
    try:
        db_path, admin_token = read_settings()
        conn = db.connect(db_path)
    except EvalkitError as error:
        st.error(str(error))
        return
    try:
        if _admin_signed_in(admin_token):
            from evalkit.rating.admin_page import render_admin

            render_admin(conn)
        else:
            _rater_page(conn, db_path)
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


def _rater_page(conn, db_path: str) -> None:
    rater_id = st.session_state.get("rater_id")
    if not rater_id:
        _sign_in_form(conn)
        return
    try:
        check_session(conn, rater_id, st.session_state.get("session_key"))
        view = next_trial(conn, rater_id)
    except EvalkitError as error:  # signed in elsewhere, invitation expired, rater gone: sign in again
        st.error(str(error))
        st.session_state.pop("rater_id", None)
        _sign_in_form(conn)
        return
    done, total = progress(conn, rater_id)
    bar, who = st.columns([5, 1], vertical_alignment="center")
    bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done} / {total} done")
    who.caption(f"Signed in as **{_plain(rater_id)}**")
    if who.button("Sign out", key="sign_out", type="tertiary"):
        st.session_state.pop("rater_id", None)
        st.rerun()
    if view is None:
        st.success("All done, thank you! You can close this tab.")
        return
    _trial(conn, db_path, rater_id, view)


def _sign_in_form(conn) -> None:
    st.title("Image rating study")
    st.write("You will see a text prompt and two sets of images made from it. For each pair, answer which set is "
             "of higher quality and which better matches the text. There are no right answers for most trials; "
             "go with your first impression.")
    with st.form("sign_in"):
        text = st.text_input("Your rater id or invitation token", key="sign_in_text")
        if st.form_submit_button("Start", type="primary"):
            try:
                rater_id = sign_in(conn, text)
                st.session_state["session_key"] = start_session(conn, rater_id)
                st.session_state["rater_id"] = rater_id
            except EvalkitError as error:
                st.error(str(error))
                return
            st.rerun()


def _image_grid(conn, image_ids: list[str]) -> None:
    # Two rows at most, sized so that both sets and the questions fit a 1366x768 laptop screen.
    per_row = max(1, (len(image_ids) + 1) // 2) if len(image_ids) > 2 else len(image_ids)
    width = {1: 300, 2: 160}.get(per_row, 120 if per_row <= 4 else 90)
    for start in range(0, len(image_ids), per_row):
        columns = st.columns(per_row, gap="small")
        for column, image_id in zip(columns, image_ids[start:start + per_row]):
            try:
                data = image_bytes(conn, image_id)
            except EvalkitError as error:  # e.g. a run moved after the study was created: say so, show nothing
                column.error(f"image unavailable: {error}")
                continue
            # PNG, not Streamlit's default JPEG re-encoding: compression artefacts would bias quality judgements
            column.image(data, width=width, output_format="PNG")


def _plain(text: str) -> str:
    """Benchmark prompts are data, not markup: escape inline Markdown so a prompt cannot render links, remote
    images or emphasis (block markers like '#' or '-' only act at a line start, which a prompt never reaches)."""
    one_line = " ".join(text.split())
    return re.sub(r"([\\`*_{}\[\]()!|<>~$:])", r"\\\1", one_line)


def _shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def _choose(state_key: str, answer: str) -> None:
    st.session_state[state_key] = answer


def _submit(db_path: str, rater_id: str, trial_id: int, questions: list[str]) -> None:
    """Runs before the rerun that follows the click, so the page that comes back already shows the next trial."""
    answers = {q: st.session_state.get(f"answer-{trial_id}-{q}") for q in questions}
    if any(answer is None for answer in answers.values()):
        st.session_state["submit_warning"] = "Please answer every question before submitting."
        return
    conn = db.connect(db_path)
    try:
        record_answers(conn, rater_id, trial_id, answers, session_key=st.session_state.get("session_key", ""))
    except EvalkitError as error:
        st.session_state["submit_warning"] = str(error)
        return
    finally:
        conn.close()
    for question in questions:
        st.session_state.pop(f"answer-{trial_id}-{question}", None)


def _trial(conn, db_path: str, rater_id: str, view) -> None:
    questions = db.read_config(conn)["questions"]
    st.markdown(f"**Prompt:** “{_plain(view.prompt)}”")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Left set**")
        _image_grid(conn, view.left_images)
    with right:
        st.markdown("**Right set**")
        _image_grid(conn, view.right_images)
    with st.container(border=True):
        for column, question in zip(st.columns(len(questions), gap="large"), questions):
            keys = ANSWER_KEYS[question]
            state_key = f"answer-{view.trial_id}-{question}"
            # the full prompt is shown above; repeating a long one here would push the answers off a laptop screen
            shown = question_text(question, _shorten(view.prompt))
            full = question_text(question, view.prompt)
            # the tooltip is Markdown too: escaped like the prompt, or a long prompt's links would render there
            column.markdown(f"**{_plain(shown)}**", help=_plain(full) if shown != full else None)
            for button_column, answer, key in zip(column.columns(3, gap="small"), ANSWER_LABELS, keys):
                button_column.button(
                    ANSWER_LABELS[answer], key=f"{state_key}-{answer}", shortcut=key, width="stretch",
                    type="primary" if st.session_state.get(state_key) == answer else "secondary",
                    on_click=_choose, args=(state_key, answer),
                )
        hint = " · ".join(f"{q}: {'/'.join(ANSWER_KEYS[q])} = left/indifferent/right" for q in questions)
        submit, keys = st.columns([1, 4], vertical_alignment="center")
        keys.caption(f"Keyboard: {hint} · Enter submits.")
        submit.button("Submit and next", key=f"submit-{view.trial_id}", type="primary", shortcut="Enter",
                  on_click=_submit, args=(db_path, rater_id, view.trial_id, questions))
        warning = st.session_state.pop("submit_warning", None)
        if warning:
            st.warning(warning)
