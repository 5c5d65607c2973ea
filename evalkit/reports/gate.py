"""The regression gate behind `evalkit check RUN --baseline BASELINE.json`: is every gated stat of a run within
its tolerance of the baseline (evalkit.reports.baseline describes the file and the rules)?

For each stat of the baseline, in order:
  1. the run must have it, with the same metric family and direction, and a comparability key whose every field
     agrees (evalkit.reports.keys; a difference is an error naming the field, never a number);
  2. the change ``D = new - base`` and its noise (evalkit.reports.noise: the paired bootstrap over prompts when
     both sides resampled the same prompts, else the conservative unpaired rules);
  3. the tolerance decides, in the stat's bad direction ``worse = D`` (lower is better) or ``-D`` (higher is better):
       max_increase X       regression when worse > X
       max_rel_increase R   regression when worse > R |base|
       noise (A, M)         regression when the one-sided (1 - A) lower confidence bound of ``worse`` is > M;
                            "improvement" when the (1 - A) upper bound is < 0 (reported, never a failure).

The exit code of the whole check (``CheckResult.exit_code``): 2 when any stat is an error (missing, incomparable,
no noise estimate for a noise rule), else 1 when any is a regression, else 0. Unreadable or invalid files raise
``EvalkitError`` before anything is compared.

Library API (no argparse): ``check_run(run_dir, baseline_path) -> CheckResult``,
``check_metrics(baseline, run_metrics) -> CheckResult`` for documents already read, and
``update_baseline(run_dir, baseline_path, stats=None) -> Baseline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evalkit.estimate import Estimate
from evalkit.reports.baseline import (DEFAULT_KEY, Baseline, Tolerance, baseline_from_run, read_baseline,
                                      write_baseline)
from evalkit.reports.keys import blocking_differences, noted_differences
from evalkit.reports.noise import NONE, PAIRED, change_noise
from evalkit.reports.records import RunMetrics, StatRecord, read_metrics
from evalkit.reports.tables import format_number, format_signed

PASS, REGRESSION, IMPROVEMENT, ERROR = "pass", "regression", "improvement", "error"
EXIT_OK, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2
DISPLAY_ALPHA = 0.05  # level of the change bounds shown beside a max_increase / max_rel_increase rule


@dataclass(frozen=True)
class StatCheck:
    stat: str
    verdict: str  # PASS, REGRESSION, IMPROVEMENT or ERROR
    tolerance: Tolerance
    message: str  # one line: why this verdict
    baseline: Estimate | None = None
    new: Estimate | None = None
    higher_is_better: bool | None = None
    noise_method: str = NONE
    change_low: float | None = None  # one-sided (1 - alpha) bounds on the true change new - base
    change_high: float | None = None
    alpha: float | None = None

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.new is None or self.baseline.value is None or self.new.value is None:
            return None
        return self.new.value - self.baseline.value

    def to_json(self) -> dict[str, Any]:
        return {"stat": self.stat, "verdict": self.verdict, "message": self.message,
                "tolerance": self.tolerance.to_json(), "higher_is_better": self.higher_is_better,
                "baseline": None if self.baseline is None else self.baseline.to_json(),
                "new": None if self.new is None else self.new.to_json(), "delta": self.delta,
                "noise": {"method": self.noise_method, "alpha": self.alpha, "change_low": self.change_low,
                          "change_high": self.change_high}}


@dataclass(frozen=True)
class CheckResult:
    run: str  # the run's label (run id)
    baseline: str  # the baseline file
    checks: tuple[StatCheck, ...]
    notes: tuple[str, ...] = ()
    untracked: tuple[str, ...] = ()  # stats of the run that the baseline does not gate

    @property
    def errors(self) -> list[StatCheck]:
        return [c for c in self.checks if c.verdict == ERROR]

    @property
    def regressions(self) -> list[StatCheck]:
        return [c for c in self.checks if c.verdict == REGRESSION]

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_ERROR
        return EXIT_REGRESSION if self.regressions else EXIT_OK

    @property
    def outcome(self) -> str:
        return {EXIT_OK: "passed", EXIT_REGRESSION: "regression", EXIT_ERROR: "error"}[self.exit_code]

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "baseline": self.baseline, "outcome": self.outcome, "exit_code": self.exit_code,
                "checks": [c.to_json() for c in self.checks], "notes": list(self.notes),
                "untracked": list(self.untracked)}


def _refusal(base: StatRecord, new: StatRecord | None) -> str | None:
    """Why ``new`` cannot be compared with ``base`` (None when it can)."""
    if new is None:
        return "missing from the run's metrics.json (score it with the baseline's options)"
    if new.metric != base.metric:
        return f"metric differs: {base.metric} (baseline) vs {new.metric} (run)"
    if new.higher_is_better != base.higher_is_better:
        return "direction (higher_is_better) differs between baseline and run"
    differences = blocking_differences(base.key, new.key)
    if differences:
        return "incomparable: " + "; ".join(d.describe() for d in differences)
    if new.overall.value is None:
        return "the run measured nothing (n = 0)"
    return None


def _no_noise_message(base: StatRecord, note: str) -> str:
    why = f" ({note})" if note else ""
    return (f"no noise estimate{why}: a noise tolerance needs intervals or bootstrap replicates on both sides "
            f"(score with --opt {base.metric}.bootstrap=200), or give {base.name} a max_increase tolerance")


def _bounds_text(worse_low: float, worse_high: float, scale: float, alpha: float) -> str:
    level = f"{100 * (1 - alpha):g}%"
    return (f"worsening [{format_signed(worse_low, scale)}, {format_signed(worse_high, scale)}] "
            f"(each end a one-sided {level} bound)")


def check_stat(name: str, base: StatRecord, new: StatRecord | None, tolerance: Tolerance) -> StatCheck:
    """The verdict on one stat (module docstring)."""
    refused = _refusal(base, new)
    if refused is not None:
        return StatCheck(name, ERROR, tolerance, refused, base.overall, None if new is None else new.overall,
                         base.higher_is_better)
    delta = new.overall.value - base.overall.value
    sign = -1.0 if base.higher_is_better else 1.0
    worse, scale = sign * delta, base.overall.value
    noise = change_noise(base, new)
    alpha = tolerance.alpha if tolerance.rule == "noise" else DISPLAY_ALPHA
    low = high = None
    if noise.known:
        low, high = noise.bounds(delta, alpha)
    common = dict(baseline=base.overall, new=new.overall, higher_is_better=base.higher_is_better,
                  noise_method=noise.method, change_low=low, change_high=high, alpha=alpha if noise.known else None)
    method_note = "" if noise.method in (PAIRED, NONE) else f" [{noise.method}{': ' + noise.note if noise.note else ''}]"
    if tolerance.rule in ("max_increase", "max_rel_increase"):
        limit = tolerance.limit * (abs(scale) if tolerance.rule == "max_rel_increase" else 1.0)
        verdict = REGRESSION if worse > limit else PASS
        relation = ">" if verdict == REGRESSION else "<="
        return StatCheck(name, verdict, tolerance, f"worse by {format_number(worse, scale)} {relation} allowed "
                         f"{format_number(limit, scale)}", **common)
    if not noise.known:
        return StatCheck(name, ERROR, tolerance, _no_noise_message(base, noise.note), **common)
    worse_low, worse_high = sorted((sign * low, sign * high))
    text = _bounds_text(worse_low, worse_high, scale, alpha) + method_note
    if worse_low > tolerance.min_effect:
        floor = f" > {format_number(tolerance.min_effect, scale)}" if tolerance.min_effect else " > 0"
        return StatCheck(name, REGRESSION, tolerance, f"outside noise: {text}; its lower bound is{floor}", **common)
    if worse_high < 0:
        return StatCheck(name, IMPROVEMENT, tolerance, f"better beyond noise: {text}", **common)
    return StatCheck(name, PASS, tolerance, f"within noise: {text}", **common)


def _notes(baseline: Baseline, run: RunMetrics) -> list[str]:
    notes = [f"tolerance for {name!r} matches no gated stat (gated: {', '.join(baseline.stats)})"
             for name in baseline.tolerances if name != DEFAULT_KEY and name not in baseline.stats]
    for name, base in baseline.stats.items():
        new = run.stats.get(name)
        for difference in noted_differences(base.key, new.key) if new is not None else ():
            line = difference.describe()
            if line not in notes:
                notes.append(line)
    return notes


def check_metrics(baseline: Baseline, run: RunMetrics, baseline_label: str = "baseline") -> CheckResult:
    """Gate ``run`` against ``baseline`` (both already read)."""
    checks = tuple(check_stat(name, base, run.stats.get(name), baseline.tolerance_for(name))
                   for name, base in baseline.stats.items())
    untracked = tuple(name for name in run.stats if name not in baseline.stats)
    return CheckResult(run.label, baseline_label, checks, tuple(_notes(baseline, run)), untracked)


def check_run(run_dir: str | Path, baseline_path: str | Path) -> CheckResult:
    """Gate a run directory (or its metrics.json) against a baseline file."""
    baseline = read_baseline(baseline_path)
    return check_metrics(baseline, read_metrics(run_dir), str(baseline_path))


def update_baseline(run_dir: str | Path, baseline_path: str | Path,
                    stats: Sequence[str] | None = None) -> Baseline:
    """Write the run's stats as the new baseline, atomically. An existing file's tolerances are kept, and so is its
    set of gated stats unless ``stats`` names another; a file that exists but cannot be read is an error (it is
    not silently replaced)."""
    run = read_metrics(run_dir)
    path = Path(baseline_path)
    tolerances, names = None, stats
    if path.exists():
        existing = read_baseline(path)
        tolerances = existing.tolerances
        names = stats or list(existing.stats)
    baseline = baseline_from_run(run, tolerances, names)
    write_baseline(path, baseline)
    return baseline
