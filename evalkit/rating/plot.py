"""The paper's Fig. 3 style chart: per-category preference for A (ties = half) with 95% intervals, one panel per
question and model pair, 50% marked as "no preference"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit import atomic
from evalkit.errors import EvalkitError


def plot_summary(summary: dict[str, Any], out: str | Path) -> Path:
    out = Path(out)
    atomic.write_bytes(out, summary_png(summary))
    return out


def summary_png(summary: dict[str, Any], dpi: int = 120) -> bytes:
    """The chart as PNG bytes (no Software metadata, so the same summary gives the same bytes)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [c for c in summary["comparisons"] if c["categories"]]
    if not panels:
        raise EvalkitError("no votes to plot yet")
    questions = list(dict.fromkeys(c["question"] for c in panels))
    pairs = list(dict.fromkeys((c["model_a"], c["model_b"]) for c in panels))
    n_categories = max(len(c["categories"]) for c in panels)
    fig, axes = plt.subplots(
        len(pairs), len(questions), squeeze=False, sharex=True,
        figsize=(5.2 * len(questions), 0.9 + 0.32 * n_categories * len(pairs)),
    )
    for row, pair in enumerate(pairs):
        for col, question in enumerate(questions):
            ax = axes[row][col]
            match = [c for c in panels if (c["model_a"], c["model_b"]) == pair and c["question"] == question]
            if not match:
                ax.set_axis_off()
                continue
            rows = match[0]["categories"]
            labels = [r["category"] for r in rows]
            values = [100 * (r["pref_a_ties_half"]["value"] or 0) for r in rows]
            lows = [100 * (r["pref_a_ties_half"]["low"] if r["pref_a_ties_half"]["low"] is not None
                           else r["pref_a_ties_half"]["value"] or 0) for r in rows]
            highs = [100 * (r["pref_a_ties_half"]["high"] if r["pref_a_ties_half"]["high"] is not None
                            else r["pref_a_ties_half"]["value"] or 0) for r in rows]
            positions = list(range(len(rows)))[::-1]
            colours = ["#4c72b0" if label != "all" else "#dd8452" for label in labels]
            ax.barh(positions, values, color=colours, height=0.7,
                    xerr=[[v - lo for v, lo in zip(values, lows)], [hi - v for v, hi in zip(values, highs)]],
                    error_kw={"ecolor": "black", "capsize": 2, "elinewidth": 0.8})
            ax.axvline(50, color="grey", linestyle="--", linewidth=0.8)
            ax.set_yticks(positions, labels, fontsize=8)
            ax.set_xlim(0, 100)
            ax.set_title(f"{question}: {_short(pair[0])} vs {_short(pair[1])}", fontsize=9)
            if row == len(pairs) - 1:
                ax.set_xlabel("% preferring A (ties = 1/2), 95% CI")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
