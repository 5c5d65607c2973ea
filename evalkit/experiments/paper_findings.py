"""The Imagen paper's sampling findings, in miniature and decided: every row is what a user gets from the CLI.

    python -m evalkit.experiments.paper_findings [--benchmark toyworld] [--prompts 200] [--images-per-prompt 2]
        [--only guidance,threshold,sr_aug,sampler] [--precision bf16] [--runs runs/findings]
        [--out reports/imagen/findings]
        -> OUT/findings.md, OUT/findings.json, OUT/guidance_pareto.png, OUT/report/ (evalkit report)

Each row is ``evalkit run --model imagen --benchmark B --limit N --images-per-prompt K --opt ...`` (the same prompts
and hashed per-image seeds in every row), scored by ``evalkit score RUN --metrics toyworld,kid,fd --ref TRUTH``
(TRUTH: ``--model toyworld-truth``, the prompts' own scenes rendered, N x 8 images at the rows' size, run seed 1;
KID and FD in the ``pixels`` space, as the CI gate does, since no Inception weights can be fetched here), and
compared with its sweep's reference row by ``evalkit compare`` (paired bootstrap over prompts). ``evalkit report``
renders all rows of a sweep side by side. Sweeps, one setting changed at a time from the shipped defaults:

  guidance   base stage (32 px, as the paper's Fig. 4 curves are for its 64 px base), w = 1..10: alignment against
             distribution distance to the truth renders, the Pareto curve (reference: the shipped w = 3)
  threshold  base stage at w = 8: none / static / dynamic (the paper's claim: dynamic wins at high guidance)
  sr_aug     the whole cascade, noise-conditioning augmentation level of both SR stages at sampling 0 / 0.1 / 0.3
  sampler    base stage: DDPM 250 steps, DDIM 50, DPM-Solver++(2M) 25 / 16 (shipped) / 10, against network
             evaluations per image

Runs are reused when rerun (same spec, same run id: ``evalkit run`` makes only what is missing, ``evalkit score``
recomputes), so an interrupted sweep resumes where it stopped. Choose settings on ``toyworld-validation``; the
held-out ``toyworld`` reports them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.cli.args import MAX_IMAGES_PER_PROMPT, int_range, non_negative_int, positive_int
from evalkit.errors import EvalkitError
from evalkit.experiments.common import agg_pyplot, run_as_script, save_figure, write_report
from evalkit.imagen.cascade import PRECISIONS

QUESTIONS = ("colour", "count", "position", "binding", "all")
DISTANCES = ("kid", "fd")


@dataclass(frozen=True)
class Row:
    label: str
    options: dict = field(default_factory=dict)

    def network_evaluations(self, defaults: dict) -> int:
        """U-Net passes per base image: a guided step batches both branches, so 2; an unguided one 1. Steps from
        t < guidance_min_t are unguided (the sampler's own rule on its own time grid), as is every step at w = 1."""
        from evalkit.imagen.sampling import time_grid

        steps = int(self.options.get("steps", defaults["steps"]))
        if float(self.options.get("guidance", defaults["guidance"])) == 1.0:
            return steps
        min_t = float(self.options.get("guidance_min_t", defaults["guidance_min_t"]))
        return steps + sum(1 for s in time_grid(steps)[:-1] if float(s) >= min_t)


@dataclass(frozen=True)
class Sweep:
    name: str
    title: str
    stages: int | None  # cascade stages the rows run (None: all the checkpoint has)
    reference: str  # the row every other row is compared with
    rows: tuple[Row, ...]


SWEEPS = {
    "guidance": Sweep("guidance", "Guidance weight (base, 32 px)", 1, "w=3",
                      tuple(Row(f"w={w}", {"guidance": w}) for w in range(1, 11))),
    "threshold": Sweep("threshold", "Thresholding at w = 8 (base, 32 px)", 1, "static",
                       tuple(Row(mode, {"guidance": 8, "threshold": mode}) for mode in ("none", "static", "dynamic"))),
    "sr_aug": Sweep("sr_aug", "SR noise-conditioning augmentation at sampling (whole cascade)", None, "aug 0",
                    tuple(Row(f"aug {level:g}", {"sr_aug_level": level}) for level in (0.0, 0.1, 0.3))),
    "sampler": Sweep("sampler", "Samplers (base, 32 px)", 1, "dpm++2m 16",
                     tuple(Row(f"{sampler} {steps}", {"sampler": sampler, "steps": steps})
                           for sampler, steps in (("ddpm", 250), ("ddim", 50), ("dpm++2m", 25), ("dpm++2m", 16),
                                                  ("dpm++2m", 10)))),
}


def evalkit(*args: str, threads: int | None = None) -> str:
    """One evalkit CLI call, as a user makes it; its stdout. A failed call stops the sweep with its one-line error.
    `threads` caps the call's torch threads (OMP_NUM_THREADS) when several calls share the cores."""
    command = [sys.executable, "-m", "evalkit", *map(str, args)]
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise EvalkitError(f"`evalkit {' '.join(map(str, args[:3]))} ...` exited {done.returncode}: "
                           f"{lines[-1] if lines else 'no output'}")
    return done.stdout


def run_dir(stdout: str) -> Path:
    return Path(stdout.strip().splitlines()[-1])


def stage_count(model_path: Path) -> int:
    from evalkit.imagen.cascade import STAGE_NAMES

    return sum(1 for name in STAGE_NAMES if (model_path / f"{name}.json").is_file())


def stage_size(model_path: Path, stages: int) -> int:
    """The side of the images a cascade cut to `stages` stages makes (what the truth renders must match)."""
    from evalkit.imagen.cascade import STAGE_NAMES, read_stage_metadata

    return int(read_stage_metadata(model_path, STAGE_NAMES[stages - 1])["model"]["image_size"])


def truth_run(args, size: int) -> Path:
    return run_dir(evalkit("run", "--model", "toyworld-truth", "--benchmark", args.benchmark, "--limit", args.prompts,
                           "--images-per-prompt", 8, "--seed", 1, "--size", size, "--out", args.runs, "--quiet"))


def make_row(args, stages: int, row: Row, truth: Path) -> Path:
    settings = {"stages": stages, "precision": args.precision, **row.options}
    options = [item for key, value in settings.items() for item in ("--opt", f"{key}={value}")]
    if args.model_path:
        options += ["--model-path", args.model_path]
    run = run_dir(evalkit("run", "--model", "imagen", "--benchmark", args.benchmark, "--limit", args.prompts,
                          "--images-per-prompt", args.images_per_prompt, "--seed", 0, *options,
                          "--out", args.runs, "--quiet", "--device", "cpu"))
    evalkit("score", run, "--metrics", "toyworld,kid,fd", "--ref", truth, "--opt", "kid.extractor=pixels",
            "--opt", "fd.extractor=pixels", "--opt", f"toyworld.bootstrap={args.bootstrap}",
            "--opt", f"kid.bootstrap={args.kid_bootstrap}", "--opt", f"fd.bootstrap={args.fd_bootstrap}")
    return run


def overall_stats(run: Path, names: list[str]) -> dict[str, dict]:
    """Each named stat's overall estimate from the run's metrics.json (read once)."""
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    return {name: metrics[name]["overall"] for name in names}


def generation_seconds(run: Path) -> float:
    lines = (run / "generation.jsonl").read_text().splitlines()
    return sum(float(json.loads(line)["seconds"]) for line in lines if line.strip())


def compare(reference: Path, run: Path) -> dict:
    return {row["stat"]: row for row in json.loads(evalkit("compare", "--json", reference, run))["rows"]}


def cell(overall: dict, percent: bool) -> str:
    if overall.get("value") is None:
        return "—"
    if percent:
        return f"{100 * overall['value']:.1f}% [{100 * overall['low']:.1f}, {100 * overall['high']:.1f}] n={overall['n']}"
    return f"{overall['value']:.4g} [{overall['low']:.4g}, {overall['high']:.4g}]"


def change_cell(row: dict | None, percent: bool) -> str:
    """B - A with its paired 95% interval and whether it is outside noise."""
    if row is None or row.get("delta") is None:
        return "—"
    noise = row.get("noise") or {}
    scale, unit = (100, " pts") if percent else (1, "")
    mark = " **outside noise**" if noise.get("outside") else ""
    return (f"{scale * row['delta']:+.1f}{unit} [{scale * noise.get('change_low', float('nan')):+.1f}, "
            f"{scale * noise.get('change_high', float('nan')):+.1f}]{mark}" if percent else
            f"{row['delta']:+.3g} [{noise.get('change_low', float('nan')):+.3g}, "
            f"{noise.get('change_high', float('nan')):+.3g}]{mark}")


def sweep_table(sweep: Sweep, runs: dict[str, Path], defaults: dict) -> tuple[list[str], list[dict]]:
    reference = runs[sweep.reference]
    header = ["setting", *QUESTIONS, *DISTANCES, f"'all' vs {sweep.reference} (paired)",
              f"position vs {sweep.reference} (paired)", f"fd vs {sweep.reference} (paired)", "U-Net passes / image",
              "generation s"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    records = []
    for row in sweep.rows:
        run = runs[row.label]
        changes = compare(reference, run) if run != reference else {}
        found = overall_stats(run, [f"toyworld.{q}" for q in QUESTIONS] + list(DISTANCES))
        values = {name.removeprefix("toyworld."): value for name, value in found.items()}
        passes = row.network_evaluations(defaults) if sweep.stages == 1 else None  # base-only sweeps
        lines.append("| " + " | ".join([
            f"**{row.label}**" if row.label == sweep.reference else row.label,
            *(cell(values[q], True) for q in QUESTIONS), *(cell(values[d], False) for d in DISTANCES),
            change_cell(changes.get("toyworld.all"), True), change_cell(changes.get("toyworld.position"), True),
            change_cell(changes.get("fd"), False), str(passes) if passes else "—",
            f"{generation_seconds(run):.0f}"]) + " |")
        records.append({"sweep": sweep.name, "setting": row.label, "options": row.options, "run": run.name,
                        "stats": values, "paired_vs_reference": {k: v for k, v in changes.items()
                                                                 if k in ("toyworld.all", "toyworld.position", "fd")}})
    return lines, records


def pareto_figure(records: list[dict], path: Path) -> Path:
    """Alignment ('all' correct) against FD to the truth renders, one point per guidance weight (the paper's Fig. 4)."""
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    points = [(r["stats"]["fd"]["value"], r["stats"]["all"]["value"], r["setting"]) for r in records]
    ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color="#3060a0")
    for x, y, label in points:
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("FD to ground-truth renders, pixel space (lower is better)")
    ax.set_ylabel("toy-world 'all' accuracy (higher is better)")
    ax.set_title("Guidance sweep: alignment vs distribution distance")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def sweep_command(args, name: str) -> str:
    return (f"python -m evalkit.experiments.paper_findings --benchmark {args.benchmark} --prompts {args.prompts} "
            f"--images-per-prompt {args.images_per_prompt} --only {name} --precision {args.precision}"
            + (f" --model-path {args.model_path}" if args.model_path else ""))


def previous_sweeps(path: Path, keep: list[str]) -> tuple[dict[str, list[str]], list[dict]]:
    """The sections and rows of the sweeps not rerun, from an earlier findings.json in OUT (none if absent)."""
    if not path.is_file():
        return {}, []
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
        sections = {name: list(earlier["sections"][name]) for name in keep if name in earlier["sections"]}
        rows = [row for row in earlier["rows"] if row["sweep"] in sections]
    except (ValueError, KeyError, TypeError) as err:
        raise EvalkitError(f"{path}: not a findings file this driver wrote ({err}); move it away") from None
    return sections, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="toyworld")
    parser.add_argument("--prompts", type=positive_int, default=200)
    parser.add_argument("--images-per-prompt", type=int_range(2, MAX_IMAGES_PER_PROMPT), default=2,
                        help="at least 2: pairs for the bootstrap")
    parser.add_argument("--only", default=",".join(SWEEPS), help=f"comma-separated sweeps of {', '.join(SWEEPS)}")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="toy-world bootstrap replicates over prompts")
    parser.add_argument("--fd-bootstrap", type=positive_int, default=200, help="FD bootstrap replicates over prompts")
    parser.add_argument("--kid-bootstrap", type=non_negative_int, default=0,
                        help="KID bootstrap replicates over prompts (0: KID's subset interval alone; each replicate "
                             "re-runs KID's 100 subsets, 1.4 s at 400 x 1,600 images)")
    parser.add_argument("--model-path", type=Path, default=None, help="Imagen checkpoint (default: the shipped one)")
    parser.add_argument("--precision", choices=PRECISIONS, default="bf16",
                        help="the cascade's arithmetic in every row (bf16: 0.73x the time of fp32 on CPUs with AMX; "
                             "scores within one image of fp32 on validation)")
    parser.add_argument("--runs", type=Path, default=Path("runs") / "findings")
    parser.add_argument("--out", type=Path, default=Path("reports") / "imagen" / "findings")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SWEEPS]
    if unknown:
        raise EvalkitError(f"--only: unknown sweep {unknown[0]!r} (choose from {', '.join(SWEEPS)})")
    from evalkit.adapters.imagen import DEFAULT_CHECKPOINT
    from evalkit.imagen.cascade import read_stage_metadata

    checkpoint = args.model_path or DEFAULT_CHECKPOINT
    base = read_stage_metadata(checkpoint, "base").get("sampling", {})
    defaults = {"steps": base.get("steps", 16), "guidance": base.get("guidance", 3.0),
                "guidance_min_t": base.get("guidance_min_t", 0.0)}
    args.out.mkdir(parents=True, exist_ok=True)
    sections, records = previous_sweeps(args.out / "findings.json", keep=[n for n in SWEEPS if n not in chosen])
    truths: dict[int, Path] = {}
    for name in chosen:
        sweep = SWEEPS[name]
        stages = sweep.stages or stage_count(checkpoint)
        size = stage_size(checkpoint, stages)
        if size not in truths:
            truths[size] = truth_run(args, size)
        runs = {row.label: make_row(args, stages, row, truths[size]) for row in sweep.rows}
        table, rows = sweep_table(sweep, runs, defaults)
        records += rows
        report_dir = args.out / "report" / name
        evalkit("report", *runs.values(), "--out", report_dir, "--title", sweep.title,
                *[item for label, run in runs.items() for item in ("--label", f"{run}={label}")])
        lines = [f"`{sweep_command(args, name)}` (2 CPU threads)", "", *table, "",
                 f"Report with per-category tables and image grids: `{report_dir / 'report.html'}` (`evalkit report` "
                 "of these runs).", ""]
        if name == "guidance":
            pareto_figure(rows, args.out / "guidance_pareto.png")
            lines += ["![guidance Pareto](guidance_pareto.png)", ""]
        sections[name] = lines
    records.sort(key=lambda r: list(SWEEPS).index(r["sweep"]))
    text = ["# The paper's sampling findings, decided", "", "Every row: `evalkit run --model imagen --benchmark B "
            "--limit N --images-per-prompt K --opt ...`, `evalkit score RUN --metrics toyworld,kid,fd --ref TRUTH` "
            "(pixel-space KID / FD to the prompts' ground-truth renders) and `evalkit compare REFERENCE RUN` (paired "
            "bootstrap over prompts; same prompts and seeds in every row). Intervals are 95%. Each sweep's section "
            "starts with the command that made it; rerunning one sweep keeps the others' sections.", ""]
    for name in (n for n in SWEEPS if n in sections):
        text += [f"## {SWEEPS[name].title}", "", *sections[name]]
    write_report(args.out / "findings.md", "\n".join(text))
    write_report(args.out / "findings.json", json.dumps({"sections": sections, "rows": records}, indent=1))
    print(f"wrote {args.out / 'findings.md'}")
    return 0


if __name__ == "__main__":
    run_as_script(main)
