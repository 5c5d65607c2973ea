"""Many raters voting at once on one study database, through the storage layer the app uses
(``session.sign_in`` / ``next_trial`` / ``record_answers``), in separate processes or threads.

Every rater answers each trial with random answers (seeded per rater) and then submits the same trial again with
other answers, as a double click, a replayed request or a stuffing attempt would; the second submit must add
nothing. The submissions are checked against the votes table by ``rating_browser.check_votes``; the latency of a
vote is the ``record_answers`` call (lock wait + commit, with the study's fsync policy).
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.experiments.rating_browser import SCREEN_ANSWERS, Submission

START_TIMEOUT_S = 120.0


@dataclass
class RaterResult:
    rater_id: str
    submissions: list[Submission] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)   # each first submit's record_answers call
    repeats_refused: int = 0                                 # second submits that added no vote
    repeats_tried: int = 0
    first_submits_short: int = 0                             # first submits that stored fewer votes than answers


def _other(answer: str, rng: random.Random) -> str:
    return rng.choice([a for a in SCREEN_ANSWERS if a != answer])


def rate(db_path: str, rater_id: str, votes: int, questions: list[str], seed: int) -> RaterResult:
    """One rater's whole session on its own connection; votes on ``votes`` trials (fewer if the study runs out)."""
    from evalkit.rating import db
    from evalkit.rating.session import next_trial, record_answers, sign_in, start_session

    rng = random.Random(f"{seed}:{rater_id}")
    result = RaterResult(rater_id)
    conn = db.connect(db_path)
    try:
        sign_in(conn, rater_id)
        key = start_session(conn, rater_id)
        for _ in range(votes):
            view = next_trial(conn, rater_id)
            if view is None:
                break
            answers = {q: rng.choice(SCREEN_ANSWERS) for q in questions}
            started = time.time()
            new = record_answers(conn, rater_id, view.trial_id, answers, session_key=key)
            result.latencies_s.append(time.time() - started)
            result.first_submits_short += new != len(questions)  # check_votes shows which vote went missing
            result.submissions.append(Submission(rater_id, view.trial_id, answers, started))
            repeat = {q: _other(a, rng) for q, a in answers.items()}
            result.repeats_tried += 1
            result.repeats_refused += record_answers(conn, rater_id, view.trial_id, repeat, session_key=key) == 0
    finally:
        conn.close()
    return result


def _process_main(db_path, rater_id, votes, questions, seed, gate, queue) -> None:
    gate.wait(START_TIMEOUT_S)  # every process connected and waiting: they all start writing together
    try:
        queue.put(rate(db_path, rater_id, votes, questions, seed))
    except BaseException as error:  # reported, so the parent fails with the reason instead of a timeout
        queue.put(RuntimeError(f"{rater_id}: {type(error).__name__}: {error}"))


def _in_processes(db_path: str, raters: list[str], votes: int, questions: list[str], seed: int):
    context = multiprocessing.get_context("fork")
    queue, gate = context.Queue(), context.Barrier(len(raters) + 1)
    workers = [context.Process(target=_process_main, args=(db_path, r, votes, questions, seed, gate, queue))
               for r in raters]
    for worker in workers:
        worker.start()
    gate.wait(START_TIMEOUT_S)
    started = time.perf_counter()
    results = [queue.get(timeout=START_TIMEOUT_S * 5) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join(timeout=30)
    return results, elapsed


def _in_threads(db_path: str, raters: list[str], votes: int, questions: list[str], seed: int):
    gate = threading.Barrier(len(raters) + 1)

    def one(rater_id: str):
        gate.wait(START_TIMEOUT_S)
        try:
            return rate(db_path, rater_id, votes, questions, seed)
        except BaseException as error:
            return RuntimeError(f"{rater_id}: {type(error).__name__}: {error}")

    with ThreadPoolExecutor(max_workers=len(raters)) as pool:
        futures = [pool.submit(one, r) for r in raters]
        gate.wait(START_TIMEOUT_S)
        started = time.perf_counter()
        results = [future.result() for future in futures]
    return results, time.perf_counter() - started


def storage_raters(db_path: str | Path, raters: int, votes: int, questions: list[str], workers: str = "processes",
                   seed: int = 0) -> tuple[list[RaterResult], float]:
    """``raters`` raters (``r000``, ``r001``, ...) voting at once, one process or thread each; returns their results
    and the wall time from the common start to the last vote. A rater that failed raises here with its reason."""
    if workers not in ("processes", "threads"):
        raise ValueError(f"workers must be 'processes' or 'threads', not {workers!r}")
    names = [f"r{i:03d}" for i in range(raters)]
    run = _in_processes if workers == "processes" else _in_threads
    results, elapsed = run(str(db_path), names, votes, questions, seed)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {raters} raters failed; first: {failed[0]}")
    return sorted(results, key=lambda r: r.rater_id), elapsed
