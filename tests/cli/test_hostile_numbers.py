"""Hostile numbers for every numeric argument and option: 0, negatives, huge values (1e30, 2**63), nan, inf,
non-numbers and empty strings. Each ends cleanly: exit 0, or exit 2 with one line on stderr; never a traceback,
a hang or an absurd allocation (each case has a time limit).

    .venv/bin/python -m pytest tests/cli/test_hostile_numbers.py -q
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.cli import build_parser
from evalkit.errors import EvalkitError
from tests import fake_plugin
from tests.hostile import evalkit_cli

VALUES = ["0", "-1", "1e30", str(2**63), str(2**63 - 1), "nan", "inf", "-inf", "1e400", "", " ", "abc", "1.5",
          "0x10", "9" * 5000]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A prompt file, two fake-model runs (one scored), and the paths the commands write to."""
    root = tmp_path_factory.mktemp("numbers")
    fake_plugin.install(root / "plugin")
    prompts = root / "prompts.csv"
    prompts.write_text("prompt,category\na red cube,A\na blue ball,B\n")
    runs = []
    for seed in ("0", "1"):
        outcome = evalkit_cli(["run", "--model", "fake", "--prompts", prompts, "--images-per-prompt", "2",
                               "--seed", seed, "--out", root / "runs", "--quiet", "--device", "cpu"])
        assert outcome.code == 0, outcome.describe()
        runs.append(Path(outcome.stdout.strip().splitlines()[-1]))
    ref = runs[1] / "images"
    score = ["score", runs[0], "--metrics", "kid", "--opt", "kid.extractor=pixels", "--ref", ref, "--workers", "0",
             "--no-cache"]
    assert evalkit_cli(score).code == 0
    return {"root": root, "prompts": prompts, "runs": runs, "ref": ref, "score": score}


def _run(world, *extra):
    return ["run", "--model", "fake", "--prompts", world["prompts"], "--out", world["root"] / "out", "--quiet",
            "--device", "cpu", *extra]


def _score(world, *extra):
    return ["score", world["runs"][0], "--ref", world["ref"], "--workers", "0", "--no-cache", *extra]


# (label, argv for a value V): the commands a user types, each with one number replaced.
TEMPLATES = {
    "run --limit": lambda w, v: _run(w, f"--limit={v}"),
    "run --images-per-prompt": lambda w, v: _run(w, f"--images-per-prompt={v}"),
    "run --seed": lambda w, v: _run(w, f"--seed={v}"),
    "run --batch-size": lambda w, v: _run(w, f"--batch-size={v}"),
    "run --size": lambda w, v: _run(w, f"--size={v}"),
    "run --size HxW": lambda w, v: _run(w, f"--size=16x{v}"),
    "run --threads": lambda w, v: _run(w, f"--threads={v}"),
    "run imagen --opt steps": lambda w, v: _run(w, "--model", "imagen", "--opt", "stages=1", "--opt", f"steps={v}"),
    "run imagen --opt guidance": lambda w, v: _run(w, "--model", "imagen", "--opt", "stages=1", "--opt", "steps=1",
                                                   "--opt", f"guidance={v}", "--images-per-prompt", "1"),
    "run imagen --opt stages": lambda w, v: _run(w, "--model", "imagen", "--opt", f"stages={v}", "--opt", "steps=1",
                                                 "--images-per-prompt", "1"),
    "run imagen --opt sr_aug_level": lambda w, v: _run(w, "--model", "imagen", "--opt", "stages=2", "--opt", "steps=1",
                                                       "--opt", "sr_steps=1", "--opt", f"sr_aug_level={v}",
                                                       "--images-per-prompt", "1"),
    "score --batch-size": lambda w, v: _score(w, "--metrics", "kid", "--opt", "kid.extractor=pixels",
                                              f"--batch-size={v}"),
    "score --workers": lambda w, v: [*_score(w, "--metrics", "kid", "--opt", "kid.extractor=pixels"), f"--workers={v}"],
    "score --seed": lambda w, v: _score(w, "--metrics", "kid", "--opt", "kid.extractor=pixels", f"--seed={v}"),
    "score --bootstrap": lambda w, v: _score(w, "--metrics", "kid", "--opt", "kid.extractor=pixels",
                                             f"--bootstrap={v}"),
    "score --opt kid.subsets": lambda w, v: _score(w, "--metrics", "kid", "--opt", "kid.extractor=pixels", "--opt",
                                                   f"kid.subsets={v}"),
    "score --opt kid.subset_size": lambda w, v: _score(w, "--metrics", "kid", "--opt", "kid.extractor=pixels",
                                                       "--opt", f"kid.subset_size={v}"),
    "score --opt fd.bootstrap": lambda w, v: _score(w, "--metrics", "fd", "--opt", "fd.extractor=pixels", "--opt",
                                                    f"fd.bootstrap={v}"),
    "score --opt prdc.k_pr": lambda w, v: _score(w, "--metrics", "prdc", "--opt", "prdc.extractor=pixels", "--opt",
                                                 f"prdc.k_pr={v}"),
    "score --opt prdc.max_samples": lambda w, v: _score(w, "--metrics", "prdc", "--opt", "prdc.extractor=pixels",
                                                        "--opt", f"prdc.max_samples={v}"),
    "score --opt cmmd.sigma": lambda w, v: _score(w, "--metrics", "cmmd", "--opt", f"cmmd.sigma={v}"),
    "fid --kid-subsets": lambda w, v: ["fid", w["ref"], w["runs"][0], f"--kid-subsets={v}", "--workers", "0"],
    "fid --kid-subset-size": lambda w, v: ["fid", w["ref"], w["runs"][0], f"--kid-subset-size={v}"],
    "ref-stats --size": lambda w, v: ["ref-stats", "--images", w["ref"], "--out", w["root"] / "ref.npz", f"--size={v}"],
    "report --prompts-per-category": lambda w, v: ["report", w["runs"][0], "--out", w["root"] / "report",
                                                   f"--prompts-per-category={v}"],
    "report --samples": lambda w, v: ["report", w["runs"][0], "--out", w["root"] / "report", f"--samples={v}"],
    "study create --set-size": lambda w, v: ["study", "create", "--runs", *w["runs"], "--db", w["root"] / "s.sqlite",
                                             "--force", f"--set-size={v}"],
    "study create --control-fraction": lambda w, v: ["study", "create", "--runs", *w["runs"], "--db",
                                                     w["root"] / "s.sqlite", "--force", "--set-size=1",
                                                     f"--control-fraction={v}"],
    "study create --trials-per-rater": lambda w, v: ["study", "create", "--runs", *w["runs"], "--db",
                                                     w["root"] / "s.sqlite", "--force", "--set-size=1",
                                                     f"--trials-per-rater={v}"],
    "study create --seed": lambda w, v: ["study", "create", "--runs", *w["runs"], "--db", w["root"] / "s.sqlite",
                                         "--force", "--set-size=1", f"--seed={v}"],
    "study invite --count": lambda w, v: ["study", "invite", "--db", w["root"] / "study.sqlite", f"--count={v}"],
    "study invite --valid-hours": lambda w, v: ["study", "invite", "--db", w["root"] / "study.sqlite",
                                                f"--valid-hours={v}"],
    "study summarize --bootstrap": lambda w, v: ["study", "summarize", "--db", w["root"] / "study.sqlite",
                                                 f"--bootstrap={v}"],
    "study summarize --seed": lambda w, v: ["study", "summarize", "--db", w["root"] / "study.sqlite", f"--seed={v}"],
}


@pytest.fixture(scope="module")
def study(world):
    outcome = evalkit_cli(["study", "create", "--runs", *world["runs"], "--db", world["root"] / "study.sqlite",
                           "--set-size", "1"])
    assert outcome.code == 0, outcome.describe()


CASES = [(label, value) for label in TEMPLATES for value in VALUES]


NOT_NUMBERS = {"nan", "inf", "-inf", "1e400", "", " ", "abc", "9" * 5000}  # none is a finite number
FLOATS = {"run imagen --opt guidance", "run imagen --opt sr_aug_level",
          "score --opt cmmd.sigma", "study create --control-fraction", "study invite --valid-hours"}
UNCAPPED = {"run --limit", "study create --trials-per-rater"}  # more than there is means all of it


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label, value", CASES, ids=[f"{label}={value[:12]!r}" for label, value in CASES])
def test_a_hostile_number_ends_cleanly(world, study, label, value):
    outcome = evalkit_cli(TEMPLATES[label](world, value))
    assert outcome.clean, outcome.describe()
    if value in NOT_NUMBERS or (value == str(2**63) and label not in FLOATS | UNCAPPED):
        assert outcome.code == 2, outcome.describe()


def _parse(argv: list[str]):
    """argparse alone: (exit code or None when it parsed, stderr, namespace)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return None, err.getvalue(), build_parser().parse_args(argv)
        except SystemExit as stop:
            return stop.code, err.getvalue(), None


# Every numeric flag of every command, as `evalkit ... --flag=VALUE` (parse only: no command runs).
FLAGS = {
    ("run", "--model", "m"): ["--limit", "--images-per-prompt", "--seed", "--batch-size", "--size", "--threads"],
    ("score", "R"): ["--batch-size", "--workers", "--seed", "--bootstrap"],
    ("distance", "A", "B"): ["--batch-size", "--workers", "--seed", "--bootstrap"],
    ("fid", "A", "B"): ["--kid-subsets", "--kid-subset-size", "--seed", "--batch-size", "--workers"],
    ("ref-stats", "--images", "I", "--out", "O"): ["--size", "--batch-size", "--workers"],
    ("report", "R", "--out", "O"): ["--prompts-per-category", "--samples"],
    ("study", "create", "--runs", "A", "--db", "D"): ["--set-size", "--control-fraction", "--control-threshold",
                                                      "--trials-per-rater", "--seed"],
    ("study", "invite", "--db", "D"): ["--count", "--valid-hours"],
    ("study", "summarize", "--db", "D"): ["--bootstrap", "--seed"],
    ("train", "imagen", "--stage", "base"): ["--steps", "--batch-size", "--lr", "--warmup-steps", "--ema-decay",
                                             "--grad-clip", "--cond-drop", "--aug-max", "--min-snr-gamma",
                                             "--high-noise-share", "--expert-band", "--band-power", "--grounding-weight", "--max-tokens", "--seed",
                                             "--save-every", "--log-every", "--workers", "--max-minutes", "--stop-at",
                                             "--eval-every", "--eval-prompts", "--eval-images-per-prompt"],
}
PAIRS = [(prefix, flag) for prefix, flags in FLAGS.items() for flag in flags]
NUMBERISH = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "NaN", "1e400", "-0", "0.0", "1_000", "0x10", "١٢", "", " ", "1e30"]),
    st.text(max_size=12),
)


def _sizes(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    return []


@settings(max_examples=400, deadline=None)
@given(pair=st.sampled_from(PAIRS), text=NUMBERISH)
def test_any_number_parses_to_a_bounded_value_or_one_line(pair, text):
    prefix, flag = pair
    code, stderr, namespace = _parse([*prefix, f"{flag}={text}"])
    assert "Traceback" not in stderr
    if namespace is None:
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        return
    value = getattr(namespace, flag.lstrip("-").replace("-", "_"))
    for number in _sizes(value):
        assert math.isfinite(number), (flag, text, value)
        if isinstance(number, int) and flag != "--limit":  # --limit N beyond the benchmark means all of it
            assert abs(number) <= 2**63 - 1, (flag, text, value)


@settings(max_examples=300, deadline=None)
@given(text=NUMBERISH, key=st.sampled_from(["kid.subsets", "kid.subset_size", "kid.bootstrap", "fid.bootstrap",
                                            "prdc.k_pr", "prdc.k_dc", "prdc.max_samples", "cmmd.sigma",
                                            "cmmd.scale", "clip.per_image", "toyworld.baseline_samples",
                                            "toyworld.bootstrap"]))
def test_any_metric_option_reads_or_is_one_line(text, key):
    from evalkit.metrics.base import metric_options
    from evalkit.metrics.registry import load_metric

    metric, option = key.split(".")
    try:
        value = metric_options(load_metric(metric), {option: text})[option]
    except EvalkitError as error:
        assert "\n" not in str(error) and len(str(error)) < 300
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert math.isfinite(value) and abs(value) <= 100_000 or option in ("sigma", "scale"), (key, text, value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=NUMBERISH, key=st.sampled_from(["steps", "guidance", "sr_steps", "sr_guidance", "sr_aug_level",
                                            "sr_start_t", "stages"]))
def test_any_imagen_option_reads_or_is_one_line(tmp_path, text, key):
    """Options are parsed before the cascade loads: a missing checkpoint folder is the error for a good value."""
    from evalkit.adapters import AdapterOptions, create_adapter

    with pytest.raises(EvalkitError) as info:
        create_adapter("imagen", AdapterOptions(model_path=str(tmp_path / "none"), extra={key: text}))
    assert "\n" not in str(info.value)


@settings(max_examples=100, deadline=None)
@given(text=NUMBERISH)
def test_any_command_timeout_reads_or_is_one_line(text):
    """The command adapter's --opt timeout=SECONDS: a number the OS can wait for, or one line."""
    from evalkit.adapters import AdapterOptions, create_adapter

    try:
        adapter = create_adapter("command", AdapterOptions(model_path="true", extra={"timeout": text}))
    except EvalkitError as error:
        assert "\n" not in str(error)
        return
    assert adapter.timeout is None or 0 < adapter.timeout <= 30 * 24 * 3600
