"""Report charts as PNG bytes (matplotlib, Agg backend, 110 dpi): nothing is written here, the renderers embed or
save the bytes.

``interval_bars``: one horizontal bar per (label, run), runs side by side within a label, each with its 95%
interval as an error bar (no bar is drawn for a missing value, no error bar for a number without an interval).
"""

from __future__ import annotations

import io
from typing import Sequence

from evalkit.estimate import Estimate

DPI = 110
# Colour-blind-safe, distinguishable in greyscale print (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def interval_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[Estimate | None]]], xlabel: str,
                  title: str = "") -> bytes:
    """``series``: (run label, one Estimate or None per label). Labels read top to bottom in the given order."""
    plt = _pyplot()
    n_series = max(len(series), 1)
    height = 0.8 / n_series
    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.28 * len(labels) * max(n_series, 1.6)))
    try:
        for s, (name, values) in enumerate(series):
            ys, xs, lows, highs = [], [], [], []
            for i, est in enumerate(values):
                if est is None or est.value is None:
                    continue
                y = (len(labels) - 1 - i) + (n_series - 1 - s - (n_series - 1) / 2) * height
                ys.append(y)
                xs.append(est.value)
                # clamped: a percentile bootstrap interval need not contain the value (FID's is biased up)
                lows.append(max(est.value - est.low, 0.0) if est.has_interval else 0.0)
                highs.append(max(est.high - est.value, 0.0) if est.has_interval else 0.0)
            colour = PALETTE[s % len(PALETTE)]
            ax.barh(ys, xs, height=height * 0.92, color=colour, label=_plain(name), xerr=[lows, highs],
                    error_kw={"ecolor": "#333333", "capsize": 2, "elinewidth": 0.8})
        ax.set_yticks(range(len(labels)), [_short(label) for label in reversed(labels)], fontsize=8)
        ax.set_xlabel(_plain(xlabel), fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if title:
            ax.set_title(_plain(title), fontsize=10, loc="left")
        if len(series) > 1:  # above the axes, never over a bar
            ax.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0 if not title else 1.08),
                      ncol=min(len(series), 2), borderaxespad=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.12)
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _plain(text: str) -> str:
    """Text shown as typed: matplotlib reads ``$...$`` as mathtext and hides legend labels starting with ``_``."""
    text = str(text).replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def _short(text: str, limit: int = 40) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "\u2026"
    return _plain(text)
