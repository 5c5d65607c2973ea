"""The rating app under load: concurrent raters in headless Chromium through the real app, and many raters at once
on the storage layer; every submitted answer checked against the database (0 lost, 0 duplicated, 0 changed).

    python -m evalkit.experiments.rating_load [--browser-raters 8] [--browser-votes 10] [--storage-raters 50]
        [--storage-votes 100] [--workers processes,threads] [--durable] [--no-browser] [--out FILE]
        -> reports/rating/load.md; exit 1 if any vote was lost, duplicated or changed

Browser: one `streamlit run app.py` server, ``--browser-raters`` browser contexts at once, ``--browser-votes``
trials each (two questions: two vote rows per trial), random answers; latency from the submit click to the vote
row's ``created_at`` and to the next trial on screen (``rating_browser``). Storage: ``--storage-raters`` processes
or threads, each with its own connection, ``--storage-votes`` trials each, every trial submitted twice with
different answers (the second must add nothing); latency of the ``record_answers`` call (``rating_storage``).
The machine's load average is recorded: on a shared machine latencies depend on what else runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from evalkit.cli.args import non_negative_int, positive_int
from evalkit.experiments.common import run_as_script, write_report
from evalkit.experiments.rating_app import percentile, serve_app, synthetic_run
from evalkit.experiments.rating_browser import browser_raters, check_votes
from evalkit.experiments.rating_storage import storage_raters
from evalkit.rating import db
from evalkit.rating.build import create_study

QUESTIONS = ["quality", "alignment"]
REPORT = Path("reports") / "rating" / "load.md"


def make_study(root: Path, prompts: int, set_size: int, durable: bool = False, control_fraction: float = 0.0,
               prompt_format: str = "synthetic prompt {} for the rating load test") -> Path:
    """Two synthetic runs and a study of their ``prompts`` trials (plus controls) in ``root/study.sqlite``."""
    runs = [synthetic_run(root, name, prompts, set_size, shade, prompt_format=prompt_format)
            for name, shade in (("run-left", 210), ("run-right", 40))]
    path = root / "study.sqlite"
    create_study(path, runs, QUESTIONS, set_size=set_size, control_fraction=control_fraction, durable=durable)
    return path


def _latency_ms(values: list[float]) -> dict[str, float]:
    return {name: round(1000 * percentile(values, q), 1) for name, q in (("p50", 50), ("p95", 95), ("max", 100))}


def _check_fields(check) -> dict:
    return {"votes_submitted": check.submitted, "votes_recorded": check.recorded, "lost": check.lost,
            "duplicated": check.duplicated, "changed": check.changed, "unsubmitted": check.unsubmitted,
            "wrong_trial": check.wrong_trial, "ok": check.ok}


def browser_load(root: Path, raters: int, votes: int, seed: int = 0) -> dict:
    """``raters`` Chromium raters at once, ``votes`` trials each, through the real app; the checked outcome."""
    path = make_study(root, prompts=max(2 * votes, 4), set_size=4, control_fraction=0.1)
    names = [f"rater{i:02d}" for i in range(raters)]
    with serve_app(path, root / "streamlit.log") as url:
        started = time.perf_counter()
        submissions, dialogs = browser_raters(url, names, votes, QUESTIONS, seed=seed)
        elapsed = time.perf_counter() - started
    check = check_votes(path, submissions)
    return {"kind": "browser", "raters": raters, "votes_per_rater": votes, "trials": len(submissions),
            **_check_fields(check), "dialogs": len(dialogs), "elapsed_s": round(elapsed, 1),
            "click_to_db_ms": _latency_ms(check.latencies_s),
            "click_to_next_trial_ms": _latency_ms([s.round_trip_s for s in submissions])}


def storage_load(root: Path, raters: int, votes: int, workers: str, durable: bool = False, seed: int = 0) -> dict:
    """``raters`` storage-layer raters at once (processes or threads), ``votes`` trials each; the checked outcome
    and throughput under the study's fsync policy (``durable``: synchronous=FULL)."""
    path = make_study(root, prompts=votes, set_size=1, durable=durable)
    conn = db.connect(path)
    mode = db.synchronous(conn)
    conn.close()
    results, elapsed = storage_raters(path, raters, votes, QUESTIONS, workers=workers, seed=seed)
    submissions = [s for r in results for s in r.submissions]
    check = check_votes(path, submissions)
    return {"kind": f"storage ({workers})", "synchronous": mode, "raters": raters, "votes_per_rater": votes,
            "trials": len(submissions), **_check_fields(check),
            "repeats_tried": sum(r.repeats_tried for r in results),
            "repeats_refused": sum(r.repeats_refused for r in results),
            "first_submits_short": sum(r.first_submits_short for r in results),
            "elapsed_s": round(elapsed, 2), "vote_rows_per_s": round(check.recorded / elapsed, 1),
            "record_answers_ms": _latency_ms([x for r in results for x in r.latencies_s])}


def _row(result: dict) -> str:
    latency = result.get("click_to_db_ms") or result["record_answers_ms"]
    page = result.get("click_to_next_trial_ms", {})
    return (f"| {result['kind']} | {result.get('synchronous', 'NORMAL')} | {result['raters']} x "
            f"{result['votes_per_rater']} | {result['votes_submitted']} | {result['votes_recorded']} | "
            f"{result['lost']} | {result['duplicated']} | {result['changed'] + result['wrong_trial']} | "
            f"{result.get('repeats_refused', '-')}/{result.get('repeats_tried', '-')} | "
            f"{latency['p50']} / {latency['p95']} / {latency['max']} | "
            f"{page.get('p50', '-')} / {page.get('p95', '-')} | {result['elapsed_s']} |")


def report(results: list[dict], command: str, load: tuple[tuple, tuple]) -> str:
    lines = [
        "# Rating app under load", "",
        f"`{command}` on {os.cpu_count()} CPU cores; load average (1, 5, 15 min) "
        f"{'/'.join(f'{x:.1f}' for x in load[0])} at the start, {'/'.join(f'{x:.1f}' for x in load[1])} at the end.",
        "",
        "Votes are rows (one per trial and question); a trial has two questions. Latency, browser: submit click to "
        "the vote row's `created_at`; storage: the `record_answers` call. Repeats: second submits of a trial with "
        "other answers that were refused (added no row).", "",
        "| load | synchronous | raters x trials | votes submitted | rows | lost | duplicated | changed | "
        "repeats refused | latency p50 / p95 / max (ms) | next trial on screen p50 / p95 (ms) | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(r) for r in results), "",
    ]
    dialogs = sum(r.get("dialogs", 0) for r in results)
    lines.append(f"JavaScript dialogs fired in the browsers: {dialogs}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.rating_load",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--browser-raters", type=positive_int, default=8)
    parser.add_argument("--browser-votes", type=positive_int, default=10, help="trials per browser rater")
    parser.add_argument("--storage-raters", type=positive_int, default=50)
    parser.add_argument("--storage-votes", type=positive_int, default=100, help="trials per storage rater")
    parser.add_argument("--workers", default="processes,threads", help="comma list of processes, threads")
    parser.add_argument("--durable", action="store_true", help="storage load on a --durable study (FULL)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium load")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", type=Path, default=REPORT)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    workers = [w.strip() for w in args.workers.split(",") if w.strip()]
    if not set(workers) <= {"processes", "threads"}:
        parser.error(f"--workers must be a comma list of processes, threads; got {args.workers!r}")
    start_load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="rating-load-") as tmp:
        for number, kind in enumerate(workers):
            root = Path(tmp) / f"storage-{number}"
            root.mkdir()
            results.append(storage_load(root, args.storage_raters, args.storage_votes, kind, args.durable, args.seed))
            print(_row(results[-1]), flush=True)
        if not args.no_browser:
            root = Path(tmp) / "browser"
            root.mkdir()
            results.append(browser_load(root, args.browser_raters, args.browser_votes, args.seed))
            print(_row(results[-1]), flush=True)
    command = "python -m evalkit.experiments.rating_load " + " ".join(argv)
    write_report(args.out, report(results, command.strip(), (start_load, os.getloadavg())))
    print(f"-> {args.out}")
    return 0 if all(r["ok"] and not r.get("dialogs") for r in results) else 1


if __name__ == "__main__":
    run_as_script(main)
