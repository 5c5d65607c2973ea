"""Admin page (rendered only after the admin token matched): progress per category and rater, control pass
rates, exports. This is the only page that names the runs being compared."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from evalkit.rating import db
from evalkit.rating.votes import control_pass_rates, votes_csv, votes_frame


def category_progress(conn) -> pd.DataFrame:
    """Per category: trials, votes per question, and the number of distinct raters (the paper aimed at 25)."""
    trials = pd.DataFrame([dict(r) for r in conn.execute("SELECT trial_id, kind, category FROM trials")])
    frame = votes_frame(conn)
    real = trials[trials["kind"] == "real"]
    table = real.groupby("category").size().rename("trials").to_frame()
    real_votes = frame[frame["trial_kind"] == "real"]
    if len(real_votes):
        per_question = real_votes.pivot_table(index="category", columns="question", values="vote_id", aggfunc="count")
        table = table.join(per_question.add_prefix("votes_"), how="left")
        table = table.join(real_votes.groupby("category")["rater_id"].nunique().rename("raters"), how="left")
    return table.fillna(0).astype(int).reset_index()


def rater_progress(conn, threshold: float) -> pd.DataFrame:
    frame = votes_frame(conn)
    if frame.empty:
        return pd.DataFrame(columns=["rater_id", "trials_done", "votes", "controls", "passed", "pass_rate", "kept"])
    done = frame.groupby("rater_id")["trial_id"].nunique().rename("trials_done")
    votes = frame.groupby("rater_id").size().rename("votes")
    table = pd.concat([done, votes], axis=1).reset_index().merge(control_pass_rates(frame), on="rater_id")
    table["kept"] = ~(table["pass_rate"] < threshold)
    return table


def render_admin(conn) -> None:
    config = db.read_config(conn)
    st.title(f"Study {config['study_id']} — admin")
    st.write(f"Benchmark **{config['benchmark']['name']}**, runs: " + ", ".join(f"`{r}`" for r in config["runs"]))
    frame = votes_frame(conn)
    raters = conn.execute("SELECT COUNT(*) FROM raters").fetchone()[0]
    a, b, c = st.columns(3)
    a.metric("Votes", len(frame))
    b.metric("Raters signed in", raters)
    c.metric("Control threshold", f"{config['control_threshold']:.0%}")
    st.subheader("Progress per category")
    st.dataframe(category_progress(conn), hide_index=True)
    st.subheader("Raters (control pass rates)")
    st.dataframe(rater_progress(conn, float(config["control_threshold"])), hide_index=True)
    st.subheader("Summary")
    if st.button("Compute preference table (bootstrap, a few seconds)", key="admin_summary"):
        from evalkit.rating.summary import format_summary, summarize

        st.code(format_summary(summarize(conn, n_boot=300)), language=None)
    st.subheader("Export")
    st.download_button("Download votes (CSV)", votes_csv(frame).encode(), "votes.csv", "text/csv")
    buffer = io.BytesIO()
    frame.assign(correct=frame["correct"].astype("boolean")).to_parquet(buffer, index=False)
    st.download_button("Download votes (parquet)", buffer.getvalue(), "votes.parquet", "application/octet-stream")
