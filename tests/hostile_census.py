"""Count how the hostile cases of the prompt-file, run-directory, CLI-number and study-database tests end, against
any checkout of evalkit, so "clean before the fixes" and "clean now" come from one command:

    .venv/bin/python -m tests.hostile_census                      # this checkout
    git archive 4ac40e7 | tar -x -C /tmp/old                      # the package before the fixes ...
    cp tests/hostile.py tests/hostile_census.py /tmp/old/tests/   # ... with today's case lists
    cp tests/benchmarks/test_hostile_prompts.py /tmp/old/tests/benchmarks/
    cp tests/runs/test_corrupt_runs.py /tmp/old/tests/runs/
    cp tests/cli/test_hostile_numbers.py /tmp/old/tests/cli/
    cp tests/rating/test_hostile_db.py /tmp/old/tests/rating/
    cd /tmp/old && PYTHONPATH=/tmp/old /work/main/.venv/bin/python -m tests.hostile_census --skip-new

"Clean" is the tests' rule: exit 0 with the documented result, or exit 2 with one error line; a traceback, a hang
(over ``--hang-after`` seconds), a non-number taken as a number, a damaged file accepted, an entry outside the run
followed, or a file rewritten is not. Case lists and commands are the tests' own (imported from them).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import sys
import tempfile
import warnings
from pathlib import Path


class Hang(Exception):
    pass


def _raise_hang(*_) -> None:
    raise Hang()


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="evalkit-census-"))


class _Factory:
    def mktemp(self, name):
        return _tmp()


def _prompts(report) -> None:
    from evalkit.runs.store import open_run
    from tests import fake_plugin
    from tests.benchmarks.test_hostile_prompts import CASES, write_case
    from tests.hostile import evalkit_cli

    fake_plugin.install(_tmp())
    for name, data, expected in CASES:
        tmp = _tmp()
        outcome = evalkit_cli(["run", "--model", "fake", "--prompts", write_case(tmp, name, data), "--images-per-prompt",
                               "1", "--out", tmp / "runs", "--quiet", "--device", "cpu"])
        verdict = "clean" if outcome.clean else "traceback"
        if outcome.code == 0 and not isinstance(expected, list):
            verdict = "accepted a file it should refuse"
        elif outcome.code == 0:
            got = [r.prompt for r in open_run(outcome.stdout.strip().splitlines()[-1]).completed_records()]
            verdict = "clean" if got == expected else "wrong rows"
        elif outcome.code == 2 and isinstance(expected, list):
            verdict = "refused a valid file"
        report("prompt files", name, verdict)


def _runs(report) -> None:
    import tests.runs.test_corrupt_runs as T
    from tests.hostile import evalkit_cli

    made = T.made.__wrapped__(_Factory())
    for name, corrupt in T.CASES:
        tmp = _tmp()
        run = tmp / "runs" / made["run"].name
        shutil.copytree(made["run"], run, symlinks=True)
        corrupt(run)
        for label, argv in T.commands(made, run, tmp / "runs", tmp).items():
            snapshot = T._snapshot(run)
            outcome = evalkit_cli(argv)
            if outcome.code == 0 and label in ("run (resume)", "score"):
                snapshot.pop("manifest.json" if label == "run (resume)" else "metrics.json", None)
            verdict = "clean" if outcome.clean else "traceback"
            if {k: T._snapshot(run).get(k) for k in snapshot} != snapshot:
                verdict = "rewrote the run's files"
            elif name in T.ESCAPES and label in ("score", "report") and outcome.code == 0:
                verdict = "followed an entry out of the run"
            elif (name.startswith(("manifest", "index")) and name not in T.SHORT_MANIFESTS
                  and label in ("score", "run (resume)") and outcome.code == 0):
                verdict = "accepted a damaged run"
            report("run directories", f"{name} / {label}", verdict)


def _numbers(report, skip_new: bool, hang_after: int) -> None:
    import tests.cli.test_hostile_numbers as T
    from tests.hostile import evalkit_cli

    world = T.world.__wrapped__(_Factory())
    T.study.__wrapped__(world)
    new = {"run --threads", "study invite --valid-hours"}  # options the old package did not have
    for label, template in T.TEMPLATES.items():
        if skip_new and label in new:
            continue
        for value in T.VALUES:
            signal.alarm(hang_after)
            try:
                outcome = evalkit_cli(template(world, value))
                signal.alarm(0)
                hung = "Hang" in outcome.exception
            except Hang:
                outcome, hung = None, True
            if hung:
                verdict = f"hang (> {hang_after} s) or absurd allocation"
            elif outcome.code is None:
                verdict = "memory" if "MemoryError" in outcome.exception else "traceback"
            elif not outcome.clean:
                verdict = "unclean"
            elif value in T.NOT_NUMBERS and outcome.code == 0:
                verdict = "took a non-number as a number"
            else:
                verdict = "clean"
            report("CLI numbers", f"{label}={value[:14]!r}", verdict)


def _databases(report) -> None:
    import tests.rating.test_hostile_db as T
    from evalkit.errors import EvalkitError
    from evalkit.rating import db
    from tests.hostile import evalkit_cli

    template = T.template.__wrapped__(_Factory())
    for name, make, _ in T.CASES:
        tmp = _tmp()
        path = tmp / "study.sqlite"
        make(template, path)
        for label, argv in [("db.connect", None), *T.commands(template, path, tmp).items()]:
            before = path.read_bytes()
            if argv is None:
                try:
                    db.connect(path).close()
                    verdict = "opened it"
                except EvalkitError as error:
                    verdict = "clean" if "\n" not in str(error) else "unclean"
                except Exception:
                    verdict = "traceback"
            else:
                outcome = evalkit_cli(argv)
                verdict = ("clean" if outcome.clean_error else
                           "traceback" if outcome.code is None else f"exit {outcome.code}")
            if path.read_bytes() != before:
                verdict = "changed the file" + ("" if verdict == "clean" else f" ({verdict})")
            report("study databases", f"{name} / {label}", verdict)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["prompts", "runs", "numbers", "databases"], action="append")
    parser.add_argument("--skip-new", action="store_true", help="leave out options the old package lacks")
    parser.add_argument("--hang-after", type=int, default=60, help="seconds before a case counts as a hang")
    parser.add_argument("--verbose", action="store_true", help="list every case that is not clean")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import tests.conftest  # noqa: F401  (offline, caches in a temp folder, as the tests run)

    signal.signal(signal.SIGALRM, _raise_hang)
    resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))  # an absurd allocation fails, the machine lives
    totals: dict[str, dict[str, int]] = {}

    def report(boundary: str, case: str, verdict: str) -> None:
        totals.setdefault(boundary, {}).setdefault(verdict, 0)
        totals[boundary][verdict] += 1
        if args.verbose and verdict != "clean":
            print(f"  {boundary}: {case}: {verdict}", flush=True)

    chosen = args.only or ["prompts", "runs", "numbers", "databases"]
    for part in chosen:
        {"prompts": lambda: _prompts(report), "runs": lambda: _runs(report),
         "numbers": lambda: _numbers(report, args.skip_new, args.hang_after),
         "databases": lambda: _databases(report)}[part]()
    for boundary, verdicts in totals.items():
        total = sum(verdicts.values())
        rest = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()) if v != "clean")
        print(f"{boundary}: {verdicts.get('clean', 0)} of {total} clean" + (f" ({rest})" if rest else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
