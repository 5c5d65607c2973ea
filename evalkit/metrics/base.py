"""The metric seam: what a metric is, what it needs, and what it returns.

A metric is a small object declared as data (HELM-style): a ``name``, a direction (``higher_is_better``), what it
needs (features of which extractor, a reference set, the prompts, toy-world specs), the options it accepts, and a
``compute(ctx, options)`` that returns one or more ``Stat``s — a named ``Estimate`` overall and per group. Built-in
metrics and third-party ones enter through the same entry-point group, ``evalkit.metrics``:

    [project.entry-points."evalkit.metrics"]
    mymetric = "my_package.metrics:MY_METRIC"      # an object satisfying ``Metric``

Contract of ``compute``:
  - it reads images only through ``ctx`` (``ctx.features(extractor)`` is cached and shared by every metric of one
    scoring call; ``ctx.reference`` is the real side, ``ctx.records`` the run's index rows when the generated side is
    a run);
  - ``options`` holds exactly the keys of ``metric.options``, already parsed (defaults filled in), so a metric
    never sees an unknown or malformed option: the scorer rejects those at the boundary;
  - it raises ``EvalkitError`` for inputs it cannot score (too few images, a stats file where features are needed);
  - each returned ``Stat`` names the extractor whose features it used (``Stat.extractor``: that extractor's
    ``description()``), so the scorer can write the comparability key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from evalkit.errors import EvalkitError
from evalkit.estimate import Estimate

if TYPE_CHECKING:
    from evalkit.metrics.score import ScoreContext


@dataclass(frozen=True)
class Option:
    """One option a metric accepts (``--opt METRIC.KEY=VALUE``): its default, how to parse a string, what it does."""

    default: Any
    parse: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] = ()

    def read(self, text: Any, where: str) -> Any:
        if not isinstance(text, str):
            return text  # typed values from the library API are taken as given
        if self.choices and text not in self.choices:
            raise EvalkitError(f"{where}: expected one of {', '.join(self.choices)}, got {text!r}")
        try:
            return self.parse(text)
        except Expected as error:
            raise EvalkitError(f"{where}: cannot read {text[:40]!r} ({self.help}; expected {error})") from None
        except (TypeError, ValueError):
            raise EvalkitError(f"{where}: cannot read {text[:40]!r} ({self.help})") from None


@dataclass(frozen=True)
class Needs:
    """What a metric needs to be computed. ``extractor`` names the default feature extractor (the ``extractor``
    option, when a metric declares one, overrides it)."""

    extractor: str | None = None
    reference: bool = False
    prompts: bool = False
    toyworld: bool = False

    def describe(self) -> str:
        parts = [f"{self.extractor} features" if self.extractor else None,
                 "reference set" if self.reference else None, "prompts" if self.prompts else None,
                 "toy-world specs" if self.toyworld else None]
        return ", ".join(p for p in parts if p) or "images"


@dataclass
class Stat:
    """One named number a metric produced: overall, per group (``{"category": {label: Estimate}}``), details."""

    name: str
    overall: Estimate
    groups: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    extractor: dict[str, Any] | None = None  # the extractor's description() when features were used
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Metric(Protocol):
    name: str
    higher_is_better: bool
    needs: Needs
    description: str
    stats: tuple[str, ...]  # names of the Stats compute() returns
    options: Mapping[str, Option]

    def compute(self, ctx: "ScoreContext", options: Mapping[str, Any]) -> list[Stat]: ...


def parse_int(text: str) -> int:
    return int(text)


MAX_OPTION_INT = 100_000  # counts in options size loops (subsets, replicates, k): more is a typo, not a request


class Expected(ValueError):
    """A parse error that says what the value should have been (shown after the option's help)."""


def _int_in(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= MAX_OPTION_INT:
        raise Expected(f"a whole number from {low} to {MAX_OPTION_INT:,}")
    return value


def parse_positive_int(text: str) -> int:
    return _int_in(text, 1)


def parse_non_negative_int(text: str) -> int:
    return _int_in(text, 0)


def parse_positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def metric_options(metric: Metric, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (keys without the metric prefix) checked against the metric's declared options, defaults filled in."""
    unknown = sorted(set(given) - set(metric.options))
    if unknown:
        known = ", ".join(f"{metric.name}.{k}" for k in metric.options) or "none"
        raise EvalkitError(f"unknown option {metric.name}.{unknown[0]} (options of {metric.name}: {known})")
    return {key: option.read(given[key], f"{metric.name}.{key}") if key in given else option.default
            for key, option in metric.options.items()}


def split_options(options: Mapping[str, Any], metric_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{"kid.subsets": "50"} -> {"kid": {"subsets": "50"}}; an option for a metric not being computed is an error
    (it would otherwise be silently ignored)."""
    out: dict[str, dict[str, Any]] = {name: {} for name in metric_names}
    for full_key, value in options.items():
        metric, sep, key = full_key.partition(".")
        if not sep or not key:
            raise EvalkitError(f"option {full_key!r} must be METRIC.KEY=VALUE (e.g. kid.subsets=50)")
        if metric not in out:
            raise EvalkitError(f"option {full_key} is for metric {metric!r}, which is not among the metrics scored "
                               f"({', '.join(metric_names)})")
        out[metric][key] = value
    return out
