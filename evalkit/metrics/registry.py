"""Metric discovery through the ``evalkit.metrics`` entry-point group (built-ins are declared in evalkit's own
pyproject, so a third-party package registers a metric exactly the same way).

Names on the command line are metric names (``fid``) or the name of one of a metric's stats (``precision`` selects
``prdc``), so users can ask for what they want to read.
"""

from __future__ import annotations

from evalkit import plugins
from evalkit.errors import EvalkitError
from evalkit.metrics.base import Metric

GROUP = "evalkit.metrics"


def available_metrics() -> list[str]:
    return plugins.names(GROUP)


def load_metric(name: str) -> Metric:
    metric = plugins.load(GROUP, name, "metric")
    if not isinstance(metric, Metric):
        raise EvalkitError(f"entry point {name!r} of {GROUP} is not a metric (it lacks name/needs/compute/...)")
    if metric.name != name:
        raise EvalkitError(f"entry point {name!r} of {GROUP} holds a metric named {metric.name!r}")
    return metric


def loadable_metrics() -> tuple[list[Metric], dict[str, str]]:
    """Every registered metric that loads, and why each of the others does not (a broken plug-in must not hide
    the rest)."""
    loaded, broken = [], {}
    for name in available_metrics():
        try:
            loaded.append(load_metric(name))
        except EvalkitError as error:
            broken[name] = str(error)
    return loaded, broken


def resolve_metric_names(names: list[str]) -> list[Metric]:
    """Metric or stat names -> the metrics that compute them, in the order asked, without repeats."""
    if not names:
        raise EvalkitError("no metrics given")
    registered = available_metrics()
    chosen: list[Metric] = []
    for name in names:
        if name in registered:
            metric = load_metric(name)
        else:
            owners = [m for m in loadable_metrics()[0] if name in m.stats]
            if not owners:
                raise EvalkitError(f"unknown metric {name!r}; known metrics: {', '.join(registered)}")
            metric = owners[0]
        if metric.name not in {m.name for m in chosen}:
            chosen.append(metric)
    return chosen


def parse_metric_list(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise EvalkitError("--metrics is empty; give a comma list such as fid,kid,clip")
    return names


def describe_metrics() -> list[dict]:
    """Every registered metric as data: direction, stats, needs, options and whether its weights are present
    (what `evalkit metrics list` prints)."""
    from evalkit.metrics import extractors, weights

    rows = []
    loaded, broken = loadable_metrics()
    for metric in loaded:
        extractor = metric.options["extractor"].default if "extractor" in metric.options else metric.needs.extractor
        settings = {k: str(metric.options[k].default) for k in ("model", "pretrained") if k in metric.options}
        found = []
        if extractor:
            for name in extractors.extractor_weights(extractor, settings):
                try:
                    where = f"present at {weights.resolve(name)}"
                except EvalkitError:
                    where = f"missing (put it at {weights.candidates(name)[0]}, or pass --weights {name}=FILE)"
                found.append({"name": name, "where": where})
        rows.append({"name": metric.name, "higher_is_better": bool(metric.higher_is_better),
                     "description": metric.description, "stats": list(metric.stats),
                     "needs": metric.needs.describe() if not extractor or extractor == metric.needs.extractor
                     else metric.needs.describe().replace(str(metric.needs.extractor), extractor),
                     "options": {k: o.default for k, o in metric.options.items()}, "weights": found})
    rows += [{"name": name, "broken": reason} for name, reason in broken.items()]
    return sorted(rows, key=lambda row: row["name"])
