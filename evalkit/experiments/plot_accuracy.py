"""Training curves of the built-in Imagen's base stage, drawn from the CSVs in reports/imagen/.

    python -m evalkit.experiments.plot_accuracy [--data reports/imagen] [--out reports/imagen]

    accuracy_vs_steps.csv (written by `evalkit train imagen --eval-every`)   -> accuracy_vs_steps.png
    2026-11-25-h100-base-validation.csv (the H100 retrain's variants)       -> 2026-11-25-h100-base-runs.png
    2026-11-26-cpu-position-finetunes-validation.csv                         -> 2026-11-26-cpu-position-finetunes.png
    2026-11-26-high-noise-expert-validation.csv                              -> 2026-11-26-high-noise-expert.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evalkit.errors import EvalkitError
from evalkit.experiments.common import REPORTS_DIR, agg_pyplot, run_as_script, save_figure

FIRST_BASE = "accuracy_vs_steps"
H100_RETRAIN = "2026-11-25-h100-base"
CPU_FINETUNES = "2026-11-26-cpu-position-finetunes"
HIGH_NOISE_EXPERT = "2026-11-26-high-noise-expert"
VARIANT_COLOURS = {"A": "tab:blue", "B": "tab:orange", "C": "tab:green", "A-continued": "tab:purple"}


def read_csv(folder: Path, name: str):
    import pandas as pd

    path = folder / name
    if not path.is_file():
        raise EvalkitError(f"{path}: no such file (--data names the folder with the training-curve CSVs)")
    return pd.read_csv(path)


def first_base_figure(frame):
    """Held-out accuracy of the first base vs its training steps, guided and unconditional."""
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for question, colour in (("colour", "tab:red"), ("count", "tab:blue"), ("position", "tab:green")):
        for mode, style in (("guided", "-o"), ("unconditional", ":")):
            rows = frame[frame["mode"] == mode]
            ax.plot(rows["step"], rows[question], style, color=colour, label=f"{question} ({mode})")
    for goal, colour in ((0.9, "tab:red"), (0.5, "tab:blue")):
        ax.axhline(goal, color=colour, linewidth=0.5, alpha=0.4)
    ax.set_xlabel("base training steps (batch 128)")
    ax.set_ylabel("held-out accuracy (200 prompts)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def count_position_figure(draw, xlabel: str, ylabel: str, legend_size: int):
    """Two panels (count, position) with the 50% line; `draw(ax, question)` plots the runs."""
    plt = agg_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, question in zip(axes, ("count", "position")):
        draw(ax, question)
        ax.axhline(0.5, color="grey", linewidth=0.5)
        ax.set_title(question)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(ylabel)
    axes[1].legend(fontsize=legend_size)
    fig.tight_layout()
    return fig


def h100_figure(runs, first_base):
    """The H100 retrain's three variants x two replicates (validation prompts); the first base dashed."""
    runs, first_base = runs[runs["mode"] == "guided"], first_base[first_base["mode"] == "guided"]

    def draw(ax, question: str) -> None:
        ax.plot(first_base["step"], first_base[question], "k--", linewidth=1, label="first base's recipe (held-out)")
        for (run, replicate), rows in runs.groupby(["run", "replicate"]):
            ax.plot(rows["step"], rows[question], "-o", markersize=3, color=VARIANT_COLOURS[run],
                    alpha=0.5 + 0.5 * (replicate == 2), label=f"{run} #{replicate}")

    return count_position_figure(draw, "base training steps (batch 128)", "accuracy (200 prompts)", 7)


def cpu_finetunes_figure(runs):
    """Fine-tunes of the shipped base toward position (v-prediction, token refiner, attention positions,
    high-noise share, token layout bias), scored by the train eval hook on 100 validation prompts."""
    runs = runs[runs["mode"] == "guided"]

    def draw(ax, question: str) -> None:
        for run, rows in runs.groupby("run", sort=False):
            ax.plot(rows["steps_since_shipped"], rows[question], "o-" if len(rows) > 1 else "o", label=run)

    return count_position_figure(draw, "CPU fine-tune steps since the shipped base (batch 64)",
                                 "validation accuracy (100 prompts, base only)", 6)


def expert_figure(expert):
    """The base's high-noise expert (16 px, x0-prediction, t in [0.78, 1], from scratch, batch 256) sampled with
    the shipped base below t = 0.78; step 0 = the shipped base alone. Validation prompts, base only."""

    def draw(ax, question: str) -> None:
        ax.plot(expert["step"], expert[question], "o-", color="tab:purple", label="shipped base + expert")
        ax.axhline(expert[question].iloc[0], color="k", linestyle=":", linewidth=1, label="shipped base alone")

    return count_position_figure(draw, "expert training steps (batch 256, 16 px)", "validation accuracy (base only)", 7)


def plot_all(data: Path, out: Path) -> list[Path]:
    first_base = read_csv(data, f"{FIRST_BASE}.csv")
    figures = [
        (first_base_figure(first_base), FIRST_BASE),
        (h100_figure(read_csv(data, f"{H100_RETRAIN}-validation.csv"), first_base), f"{H100_RETRAIN}-runs"),
        (cpu_finetunes_figure(read_csv(data, f"{CPU_FINETUNES}-validation.csv")), CPU_FINETUNES),
        (expert_figure(read_csv(data, f"{HIGH_NOISE_EXPERT}-validation.csv")), HIGH_NOISE_EXPERT),
    ]
    return [save_figure(fig, out / f"{name}.png") for fig, name in figures]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.plot_accuracy",
                                     description="Draw the base stage's training curves from their CSVs.")
    parser.add_argument("--data", type=Path, default=REPORTS_DIR, help="folder with the CSVs (default: reports/imagen)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default: the --data folder)")
    args = parser.parse_args(argv)
    for path in plot_all(args.data, args.out or args.data):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_as_script(main)
