"""The sweep figures as PNG bytes: each headline stat against the swept setting, and the quality-vs-alignment
Pareto plot (Imagen, Fig. 4). matplotlib's object API on an Agg canvas (no pyplot state), mathtext off so a ``$``
in a label is a dollar sign, and no Software metadata, so the same numbers give the same bytes."""

from __future__ import annotations

import io
import math
from typing import Any, Sequence

from evalkit.estimate import Estimate

DPI = 110
FRONT_COLOUR, OTHER_COLOUR = "#c44e52", "#8c8c8c"
LINE_COLOUR = "#4c72b0"


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(draw, size: tuple[float, float]) -> bytes:
    """``draw(figure)`` on a new figure of ``size`` inches, as PNG bytes."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):
        figure = Figure(figsize=size)
        FigureCanvasAgg(figure)
        draw(figure)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _errors(estimates: Sequence[Estimate]) -> list[list[float]]:
    """Asymmetric error bars (below, above); 0 where a stat has no interval."""
    below = [e.value - e.low if e.has_interval else 0.0 for e in estimates]
    above = [e.high - e.value if e.has_interval else 0.0 for e in estimates]
    return [below, above]


def _direction(name: str, higher_is_better: bool) -> str:
    return f"{name} ({'higher' if higher_is_better else 'lower'} is better)"


def _panel(ax, name: str, higher_is_better: bool, points, field: str, numeric: bool) -> None:
    """One stat against the setting: a line through sorted numeric values, points over categories."""
    xs = [value for value, _, _ in points] if numeric else list(range(len(points)))
    estimates = [e for _, _, e in points]
    ys = [e.value for e in estimates]
    ax.plot(xs, ys, "-o" if numeric else "o", color=LINE_COLOUR, markersize=4, linewidth=1.2)
    if any(e.has_interval for e in estimates):
        ax.errorbar(xs, ys, yerr=_errors(estimates), fmt="none", ecolor="black", elinewidth=0.8, capsize=3)
    if not numeric:
        ax.set_xticks(xs, [_short(text, 16) for _, text, _ in points], rotation=30 if len(points) > 3 else 0,
                      ha="right" if len(points) > 3 else "center")
        ax.set_xlim(-0.5, len(points) - 0.5)
    ax.set_xlabel(_short(field, 40))
    ax.set_title(_direction(name, higher_is_better), fontsize=9)
    ax.grid(True, linewidth=0.4, alpha=0.5)


def metrics_png(panels: Sequence[tuple[str, bool, Sequence[tuple[Any, str, Estimate]]]], field: str,
                numeric: bool) -> bytes:
    """One panel per (stat, higher_is_better, [(setting value, its label, Estimate)]), up to three a row."""
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)

    def draw(figure):
        axes = figure.subplots(rows, columns, squeeze=False)
        for k, (name, better, points) in enumerate(panels):
            _panel(axes[k // columns][k % columns], name, better, points, field, numeric)
        for k in range(len(panels), rows * columns):
            axes[k // columns][k % columns].set_axis_off()

    return render(draw, (3.6 * columns, 2.9 * rows))


def pareto_png(labels: Sequence[str], xs: Sequence[Estimate], ys: Sequence[Estimate], on_front: Sequence[bool],
               x_name: str, y_name: str, field: str) -> bytes:
    """Distance (y, lower is better) against alignment (x, higher is better), a labelled point per setting, the
    Pareto front joined in order of alignment."""
    def draw(figure):
        ax = figure.subplots()
        x, y = [e.value for e in xs], [e.value for e in ys]
        if any(e.has_interval for e in list(xs) + list(ys)):
            ax.errorbar(x, y, xerr=_errors(xs), yerr=_errors(ys), fmt="none", ecolor="#555555", elinewidth=0.7,
                        capsize=2)
        front = sorted((xv, yv) for xv, yv, f in zip(x, y, on_front) if f)
        ax.plot([p[0] for p in front], [p[1] for p in front], "-", color=FRONT_COLOUR, linewidth=1.2,
                label="Pareto front")
        ax.scatter(x, y, c=[FRONT_COLOUR if f else OTHER_COLOUR for f in on_front], s=24, zorder=3)
        for xv, yv, text in zip(x, y, labels):
            ax.annotate(_short(text, 20), (xv, yv), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xlabel(_direction(x_name, True))
        ax.set_ylabel(_direction(y_name, False))
        ax.set_title(f"{y_name} vs {x_name}, one point per {_short(field, 32)}", fontsize=9)
        ax.legend(fontsize=8, loc="best")
        ax.grid(True, linewidth=0.4, alpha=0.5)

    return render(draw, (5.4, 4.2))
