"""Crash safety: SIGKILL `evalkit run` and `evalkit score` at seeded random moments, rerun the same command after
each kill, and check that the result is exactly what an uninterrupted run gives.

    python -m evalkit.experiments.crash_safety --kills 20            # the full count, 3 of them with Imagen
    python -m evalkit.experiments.crash_safety --kills 10 --imagen-kills 0   # tests/experiments (CI)

The moments are drawn from a traced uninterrupted run of each command (evalkit.experiments.kill_watch): a kill
lands at a chosen image write, index.csv or manifest.json write, generation.jsonl append, metrics.json write or
feature-cache write, plus a random fraction of the time to the next write (so inside the write, between the write
and its rename, or in the work after it), or at a uniformly random time of the whole command (start-up included).
Commands: the toyworld-truth adapter (40 toy-world prompts x 2 images; renders in milliseconds) and its scoring
with the toyworld metric and pixel-feature KID against a second truth run (no weights), plus the built-in Imagen
(1 stage, 8 steps, 6 prompts in batches of 2) for a real model's batches.

After each kill and rerun: the run is complete, its images and index.csv (with the sha256 column) are
byte-identical to the uninterrupted run's and `runs verify` passes; metrics.json equals the uninterrupted scoring
(but for each stat's computed_at); no ``.tmp-*`` file (evalkit.atomic's temp naming) is left anywhere, run
directories and the feature cache included; every cache entry loads; and at the end no run directory holds a
spec other than its own, while a second spec run into a killed run's --out got a directory of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.cli.args import non_negative_int, positive_int
from evalkit.errors import EvalkitError
from evalkit.experiments import crash_checks as checks
from evalkit.experiments.common import run_as_script, write_report
from evalkit.experiments.kill_watch import Folders, KillAt, Watched, run_watched

TRUTH_RUN = ["run", "--model", "toyworld-truth", "--benchmark", "toyworld", "--limit", "40", "--images-per-prompt",
             "2", "--quiet"]
IMAGEN_RUN = ["run", "--model", "imagen", "--opt", "stages=1", "--opt", "steps=8", "--benchmark", "toyworld",
              "--limit", "6", "--images-per-prompt", "1", "--batch-size", "2", "--quiet"]
SCORE_OPTIONS = ["--metrics", "toyworld,kid", "--opt", "kid.extractor=pixels", "--opt", "kid.subsets=10"]
# (command, what to kill at), in the order kills are made; imagen kills come after the fast ones.
FAST_TARGETS = [("run", "image"), ("score", "cache"), ("run", "index"), ("score", "metrics"), ("run", "manifest"),
                ("run", "timing"), ("score", "anytime"), ("run", "image"), ("run", "anytime"), ("score", "cache")]
IMAGEN_TARGETS = [("imagen", "image"), ("imagen", "anytime"), ("imagen", "image")]


@dataclass
class Reference:
    """An uninterrupted command: its arguments (without --out), its result and the trace of its writes."""

    argv: list[str]
    run_dir: Path
    trace: Watched
    metrics: dict | None = None


@dataclass
class KillResult:
    number: int
    command: str
    target: KillAt
    returncode: int | None = None
    left: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def made(self) -> bool:
        return self.returncode == -9

    @property
    def survived(self) -> bool:
        return self.made and not self.problems

    @property
    def inside_write(self) -> bool:
        """The kill came while a file was being written: it left a temp file behind."""
        return "temps:" in self.left


def evalkit_command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "evalkit", *[str(a) for a in argv]]


def environment(threads: int, cache: Path) -> dict[str, str]:
    env = dict(os.environ, EVALKIT_OFFLINE="1", EVALKIT_CACHE_DIR=str(cache), TQDM_DISABLE="1",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("EVALKIT_RUNS", None)
    return env


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(evalkit_command(argv), env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise EvalkitError(f"`evalkit {' '.join(map(str, argv))}` exited {done.returncode}: "
                           f"{(done.stderr.strip().splitlines() or [''])[-1]}")
    return done


def _traced_run(argv: list[str], out: Path, threads: int, cache: Path) -> Reference:
    out.mkdir(parents=True, exist_ok=True)
    trace = run_watched(evalkit_command([*argv, "--out", out]), environment(threads, cache), Folders(out_root=out))
    if trace.returncode != 0:
        raise EvalkitError(f"the uninterrupted `evalkit {' '.join(argv)}` failed: {trace.stderr.strip()[-300:]}")
    (run_dir,) = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    return Reference(argv, run_dir, trace)


def copy_unscored(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("metrics.json"))
    return target


def references(work: Path, threads: int, imagen: bool) -> dict[str, Reference]:
    """The uninterrupted runs: toyworld-truth (and a second spec of it, seed 1, whose images are the scoring's
    reference set), its scoring, and the Imagen run."""
    made = {"run": _traced_run(TRUTH_RUN, work / "reference" / "runs", threads, work / "reference" / "cache")}
    second = _run([*TRUTH_RUN, "--seed", "1", "--out", work / "reference" / "runs"], environment(threads, work / "c"))
    reference_images = Path(second.stdout.strip().splitlines()[-1]) / "images"
    scored = copy_unscored(made["run"].run_dir, work / "reference" / "scored" / made["run"].run_dir.name)
    score_argv = ["score", scored, *SCORE_OPTIONS, "--ref", reference_images]
    cache = work / "reference" / "score-cache"
    (cache / "features").mkdir(parents=True)
    trace = run_watched(evalkit_command(score_argv), environment(threads, cache),
                        Folders(run_dir=scored, cache=cache / "features", json_kind="metrics"))
    if trace.returncode != 0:
        raise EvalkitError(f"the uninterrupted scoring failed: {trace.stderr.strip()[-300:]}")
    made["score"] = Reference(score_argv, scored, trace, checks.comparable_metrics(scored / "metrics.json"))
    if imagen:
        made["imagen"] = _traced_run(IMAGEN_RUN, work / "reference" / "imagen", threads, work / "reference" / "c")
    return made


def draw_kill(rng: random.Random, reference: Reference, kind: str) -> KillAt:
    """A kill at a random write of ``kind`` in the reference trace: half of the time as soon as the write starts
    (inside it: the write and its fsync take milliseconds, the kill a fraction of one), otherwise after a uniform
    part of the gap to the next write (or to the end); or, for "anytime", at a uniform time of the whole command."""
    trace = reference.trace
    if kind == "anytime":
        return KillAt("anytime", delay=rng.uniform(0.0, trace.seconds))
    times = [at for at, found in trace.events if found == kind]
    if not times:
        raise EvalkitError(f"the uninterrupted command made no {kind} write to kill at")
    ordinal = rng.randrange(len(times)) + 1
    at = times[ordinal - 1]
    following = [t for t, _ in trace.events if t > at]
    gap = (following[0] if following else trace.seconds) - at
    return KillAt(kind, ordinal, 0.0 if rng.random() < 0.5 else rng.uniform(0.0, gap))


def plan(kills: int, imagen_kills: int, seed: int, refs: dict[str, Reference]) -> list[tuple[str, KillAt]]:
    rng = random.Random(seed)
    targets = [FAST_TARGETS[i % len(FAST_TARGETS)] for i in range(kills - imagen_kills)]
    targets += [IMAGEN_TARGETS[i % len(IMAGEN_TARGETS)] for i in range(imagen_kills)]
    return [(command, draw_kill(rng, refs[command], kind)) for command, kind in targets]


def _left_by_kill(trial: Path, run_dir: Path) -> str:
    """What the kill left behind: finished images, temp files (the kill came inside a write), metrics.json."""
    images = run_dir / "images"
    done = len([p for p in images.iterdir() if not p.name.startswith(".")]) if images.is_dir() else 0
    temps = checks.temp_files(trial)
    parts = [f"{done} images"] + ([f"temps: {', '.join(Path(t).name for t in temps)}"] if temps else [])
    if (run_dir / "metrics.json").is_file():
        parts.append("metrics.json")
    return "; ".join(parts)


def trial(number: int, command: str, target: KillAt, refs: dict[str, Reference], work: Path, threads: int,
          second_spec: bool) -> KillResult:
    """One kill of ``command`` at ``target`` in a fresh directory, the rerun, and every check."""
    reference = refs[command]
    result = KillResult(number, command, target)
    folder = work / f"kill-{number:02d}"
    env = environment(threads, folder / "cache")
    if command == "score":
        run_dir = copy_unscored(refs["run"].run_dir, folder / "runs" / refs["run"].run_dir.name)
        argv = ["score", run_dir, *reference.argv[2:]]
        (folder / "cache" / "features").mkdir(parents=True)
        folders = Folders(run_dir=run_dir, cache=folder / "cache" / "features", json_kind="metrics")
    else:
        run_dir = folder / "runs" / reference.run_dir.name
        (run_dir / "images").mkdir(parents=True)  # watched from its first write (the name is the spec's run id)
        argv = [*reference.argv, "--out", folder / "runs"]
        folders = Folders(run_dir=run_dir, json_kind="manifest")
    killed = run_watched(evalkit_command(argv), env, folders, target)
    result.returncode = killed.returncode
    result.left = _left_by_kill(folder, run_dir)
    if not result.made:
        return result
    if second_spec:  # another spec into the killed run's --out: a directory of its own, the killed run untouched
        _run([*reference.argv, "--seed", "1", "--out", folder / "runs"], env)
    rerun = subprocess.run(evalkit_command(argv), env=env, capture_output=True, text=True, timeout=900)
    if rerun.returncode != 0:
        result.problems.append(f"rerun exited {rerun.returncode}: {rerun.stderr.strip()[-200:]}")
        return result
    result.problems += checks.check_run(run_dir, refs["run"].run_dir if command == "score" else reference.run_dir)
    if command == "score":
        result.problems += checks.check_metrics(run_dir, reference.metrics)
    result.problems += [f"temp file left: {t}" for t in checks.temp_files(folder)]
    result.problems += checks.check_cache(folder / "cache" / "features")
    if second_spec:
        result.problems += _check_second_spec(folder / "runs", run_dir.name, refs)
    return result


def _check_second_spec(out: Path, killed: str, refs: dict[str, Reference]) -> list[str]:
    others = [p for p in out.iterdir() if p.name != killed]
    seed_one = [p for p in refs["run"].run_dir.parent.iterdir() if p != refs["run"].run_dir]
    if len(others) != 1 or [p.name for p in others] != [p.name for p in seed_one]:
        return [f"the second spec's run directories: {[p.name for p in others]}"]
    return checks.check_run(others[0], seed_one[0])


@dataclass
class Outcome:
    kills: list[KillResult]
    misses: int
    seconds: float
    shared: list[str]

    @property
    def made(self) -> int:
        return sum(k.made for k in self.kills)

    @property
    def survived(self) -> int:
        return sum(k.survived for k in self.kills)

    @property
    def inside_writes(self) -> int:
        return sum(k.inside_write for k in self.kills if k.made)

    @property
    def mismatches(self) -> list[str]:
        return [f"kill {k.number}: {p}" for k in self.kills for p in k.problems] + self.shared


def crash_safety(work: Path, kills: int, imagen_kills: int, seed: int, threads: int) -> Outcome:
    """Make ``kills`` kills (``imagen_kills`` of them of the Imagen run); a drawn moment that the command outlives
    is redrawn (at most three times per kill) and counted as a miss."""
    started = time.monotonic()
    refs = references(work, threads, imagen_kills > 0)
    rng = random.Random(seed + 1)
    results, misses = [], 0
    planned = plan(kills, imagen_kills, seed, refs)
    first_run = next((n for n, (command, _) in enumerate(planned, start=1) if command == "run"), None)
    for number, (command, target) in enumerate(planned, start=1):
        for _ in range(4):  # a moment the command outlives is redrawn
            shutil.rmtree(work / f"kill-{number:02d}", ignore_errors=True)
            result = trial(number, command, target, refs, work, threads, second_spec=number == first_run)
            if result.made:
                break
            misses += 1
            target = draw_kill(rng, refs[command], target.kind)
        results.append(result)
    shared = checks.check_one_spec_per_directory(work)
    return Outcome(results, misses, time.monotonic() - started, shared)


def report(outcome: Outcome, argv_text: str, threads: int) -> str:
    lines = [
        "# Crash safety: SIGKILL at random moments, then the same command again", "",
        f"`python -m evalkit.experiments.crash_safety {argv_text}` ({threads} torch threads): "
        f"**{outcome.made} kills made, {outcome.survived} survived, {len(outcome.mismatches)} mismatches**; "
        f"{outcome.inside_writes} kills came inside a file write (they left a temp file, which the rerun removed); "
        f"{outcome.misses} drawn moments outlived by the command (redrawn); {outcome.seconds:.0f} s in all.", "",
        "| # | command | killed at | exit | what the kill left | after the rerun |", "|---|---|---|---|---|---|",
    ]
    for k in outcome.kills:
        verdict = "identical to the uninterrupted run" if k.survived else "; ".join(k.problems) or "not killed"
        lines.append(f"| {k.number} | {k.command} | {k.target.describe()} | {k.returncode} | {k.left} | {verdict} |")
    if outcome.shared:
        lines += ["", "Run directories shared by two specs: " + "; ".join(outcome.shared)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.crash_safety",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=positive_int, default=20, help="kills to make in all")
    parser.add_argument("--imagen-kills", type=non_negative_int, default=3, help="how many of them of the Imagen run")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the kill moments")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads of every command")
    parser.add_argument("--work", type=Path, help="keep the runs here (default: a temp folder, removed)")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.imagen_kills > args.kills:
        parser.error("--imagen-kills cannot exceed --kills")
    work = args.work or Path(tempfile.mkdtemp(prefix="evalkit-crash-"))
    try:
        outcome = crash_safety(work, args.kills, args.imagen_kills, args.seed, args.threads)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    text = report(outcome, shown, args.threads)
    print(text, end="")
    if args.out:
        write_report(args.out, text)
    if args.json:
        write_report(args.json, json.dumps(figures(outcome), indent=2) + "\n")
    return 0 if outcome.made == args.kills and outcome.survived == outcome.made and not outcome.shared else 1


def figures(outcome: Outcome) -> dict:
    return {"kills_made": outcome.made, "kills_survived": outcome.survived, "mismatches": outcome.mismatches,
            "kills_inside_a_write": outcome.inside_writes, "misses": outcome.misses,
            "seconds": round(outcome.seconds, 1),
            "kills": [{"number": k.number, "command": k.command, "target": k.target.describe(),
                       "returncode": k.returncode, "left": k.left, "problems": k.problems} for k in outcome.kills]}


if __name__ == "__main__":
    run_as_script(main)
