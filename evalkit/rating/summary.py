"""Turn a study's votes into numbers: per-question, per-category preference with intervals, Bradley-Terry scores
for 3+ models, inter-rater agreement, after dropping raters who failed the control trials."""

from __future__ import annotations

import itertools
import sqlite3
from typing import Any

import numpy as np
import pandas as pd

from evalkit.rating import db
from evalkit.rating.agreement import krippendorff_alpha_nominal
from evalkit.rating.bootstrap import preference_rates
from evalkit.rating.bradley_terry import ELO_SCALE, bradley_terry
from evalkit.rating.votes import control_pass_rates, votes_frame

SCORE = {"A": 1.0, "tie": 0.5, "B": 0.0}
ALL = "all"


def screen_raters(frame: pd.DataFrame, threshold: float) -> tuple[set[str], dict[str, Any]]:
    """Raters kept for analysis: pass rate >= threshold, or no graded control answered yet (reported as unchecked)."""
    rates = control_pass_rates(frame)
    excluded = rates[rates["pass_rate"] < threshold]["rater_id"].tolist()
    unchecked = rates[rates["controls"] == 0]["rater_id"].tolist()
    kept = set(rates["rater_id"]) - set(excluded)
    report = {
        "total": int(len(rates)), "kept": len(kept), "excluded": len(excluded), "unchecked": len(unchecked),
        "threshold": threshold, "excluded_ids": sorted(excluded),
    }
    return kept, report


def _category_rows(votes: pd.DataFrame, n_boot: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    groups = [(category, part) for category, part in votes.groupby("category", sort=True)] + [(ALL, votes)]
    for category, part in groups:
        scores = part["choice"].map(SCORE).to_numpy()
        # prompts are keyed by prompt_index: the unit the paper's prompts-and-raters bootstrap resamples
        half, strict = preference_rates(scores, part["prompt_index"], part["rater_id"], n_boot=n_boot, seed=seed)
        rows.append({
            "category": category, "votes": int(len(part)), "prompts": int(part["prompt_index"].nunique()),
            "raters": int(part["rater_id"].nunique()), "ties": int((part["choice"] == "tie").sum()),
            "pref_a_ties_half": half.to_json(), "pref_a_ties_excluded": strict.to_json(),
        })
    return rows


def summarize(conn: sqlite3.Connection, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    config = db.read_config(conn)
    frame = votes_frame(conn)
    kept, rater_report = screen_raters(frame, float(config.get("control_threshold", 0.8)))
    real = frame[(frame["trial_kind"] == "real") & frame["rater_id"].isin(kept)]
    models = list(config["runs"])
    result: dict[str, Any] = {
        "study": {key: config.get(key) for key in ("study_id", "benchmark", "runs", "questions", "set_size")},
        "raters": rater_report,
        "votes": {"total": int(len(frame)), "control": int((frame["trial_kind"] == "control").sum()),
                  "analysed": int(len(real))},
        "comparisons": [], "agreement": {}, "bradley_terry": {},
    }
    for question in config["questions"]:
        answered = real[real["question"] == question]
        for model_a, model_b in itertools.combinations(models, 2):
            pair = answered[(answered["model_a"] == model_a) & (answered["model_b"] == model_b)]
            result["comparisons"].append({
                "question": question, "model_a": model_a, "model_b": model_b,
                "categories": _category_rows(pair, n_boot, seed) if len(pair) else [],
            })
        alpha = krippendorff_alpha_nominal(zip(answered["trial_id"], answered["choice"]))
        units = int((answered.groupby("trial_id").size() >= 2).sum()) if len(answered) else 0
        result["agreement"][question] = {
            "krippendorff_alpha": None if np.isnan(alpha) else round(alpha, 6), "units_with_2plus_votes": units,
        }
        if len(models) > 2 and len(answered):
            index = {model: i for i, model in enumerate(models)}
            fit = bradley_terry(
                answered["model_a"].map(index).to_numpy(), answered["model_b"].map(index).to_numpy(),
                answered["choice"].map(SCORE).to_numpy(), answered["prompt_index"], answered["rater_id"],
                n_models=len(models), n_boot=n_boot, seed=seed,
            )
            result["bradley_terry"][question] = sorted(
                (
                    {"model": model, "score": round(float(fit["theta"][i]), 6),
                     "ci_low": round(float(fit["low"][i]), 6), "ci_high": round(float(fit["high"][i]), 6),
                     "elo": round(1000 + ELO_SCALE * float(fit["theta"][i]), 1)}
                    for model, i in index.items()
                ),
                key=lambda row: -row["score"],
            )
    return result


def _fmt(rate: dict[str, Any]) -> str:
    """A rate as written by ``Estimate.to_json``: value and 95% interval in percent."""
    if rate["value"] is None:
        return "-"
    if rate["low"] is None:
        return f"{100 * rate['value']:5.1f}%"
    return f"{100 * rate['value']:5.1f}% [{100 * rate['low']:5.1f}, {100 * rate['high']:5.1f}]"


def format_summary(summary: dict[str, Any]) -> str:
    raters = summary["raters"]
    lines = [
        f"study {summary['study']['study_id']} on {summary['study']['benchmark']['name']}: "
        f"{summary['votes']['total']} votes, {summary['votes']['analysed']} analysed",
        f"raters: {raters['total']} total, {raters['excluded']} excluded (control pass rate < "
        f"{raters['threshold']:.0%}), {raters['unchecked']} without graded controls",
    ]
    for comparison in summary["comparisons"]:
        lines.append("")
        lines.append(f"[{comparison['question']}] A = {comparison['model_a']}  vs  B = {comparison['model_b']}")
        if not comparison["categories"]:
            lines.append("  no votes yet")
            continue
        lines.append(f"  {'category':<24} {'votes':>5} {'ties':>5}  {'prefer A, tie=1/2 [95% CI]':<28} "
                     f"{'prefer A, ties excluded':<28}")
        for row in comparison["categories"]:
            lines.append(f"  {row['category'][:24]:<24} {row['votes']:>5} {row['ties']:>5}  "
                         f"{_fmt(row['pref_a_ties_half']):<28} {_fmt(row['pref_a_ties_excluded']):<28}")
    for question, rows in summary["bradley_terry"].items():
        lines.append("")
        lines.append(f"[{question}] Bradley-Terry (log-strength, 95% CI; elo = 1000 + 400 log10-odds)")
        for row in rows:
            lines.append(f"  {row['model'][:40]:<40} {row['score']:+7.3f} [{row['ci_low']:+7.3f}, "
                         f"{row['ci_high']:+7.3f}]  elo {row['elo']:.0f}")
    lines.append("")
    for question, agreement in summary["agreement"].items():
        alpha = agreement["krippendorff_alpha"]
        lines.append(f"[{question}] Krippendorff's alpha {'-' if alpha is None else f'{alpha:.3f}'} "
                     f"over {agreement['units_with_2plus_votes']} trials with 2+ votes")
    return "\n".join(lines)
