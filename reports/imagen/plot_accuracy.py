"""Plot reports/imagen/accuracy_vs_steps.csv (written by `evalkit train imagen --eval-every`) to a PNG."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
frame = pd.read_csv(HERE / "accuracy_vs_steps.csv")
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
fig.savefig(HERE / "accuracy_vs_steps.png", dpi=100)

# H100 retrain (2026-11-25): bases from scratch with early MiniLM layers + coordinate planes, three variants x two
# replicates, scored on the *validation* prompts; the first base (held-out prompts) dashed for reference.
runs = pd.read_csv(HERE / "2026-11-25-h100-base-validation.csv")
runs = runs[runs["mode"] == "guided"]
first_base = frame[frame["mode"] == "guided"]


def count_position_figure(draw, xlabel: str, ylabel: str, legend_size: int, name: str) -> None:
    """Two panels (count, position) with the 50% line; `draw(ax, question)` plots the runs."""
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
    fig.savefig(HERE / name, dpi=100)


variants = {"A": "tab:blue", "B": "tab:orange", "C": "tab:green", "A-continued": "tab:purple"}


def draw_gpu_runs(ax, question: str) -> None:
    ax.plot(first_base["step"], first_base[question], "k--", linewidth=1, label="first base's recipe (held-out)")
    for (run, replicate), rows in runs.groupby(["run", "replicate"]):
        ax.plot(rows["step"], rows[question], "-o", markersize=3, color=variants[run],
                alpha=0.5 + 0.5 * (replicate == 2), label=f"{run} #{replicate}")


count_position_figure(draw_gpu_runs, "base training steps (batch 128)", "accuracy (200 prompts)", 7, "2026-11-25-h100-base-runs.png")

# CPU position fine-tunes (2026-11-26, 2 cores): fine-tunes of the shipped base toward position (v-prediction, token refiner, attention
# positions, high-noise share, token layout bias), scored by the train eval hook on 100 validation prompts.
cpu = pd.read_csv(HERE / "2026-11-26-cpu-position-finetunes-validation.csv")
cpu = cpu[cpu["mode"] == "guided"]


def draw_cpu_runs(ax, question: str) -> None:
    for run, rows in cpu.groupby("run", sort=False):
        ax.plot(rows["steps_since_shipped"], rows[question], "o-" if len(rows) > 1 else "o", label=run)


count_position_figure(draw_cpu_runs, "CPU fine-tune steps since the shipped base (batch 64)",
                      "validation accuracy (100 prompts, base only)", 6, "2026-11-26-cpu-position-finetunes.png")

# High-noise expert (2026-11-26, 2 CPU cores): the base's high-noise expert (16 px, x0-prediction, t in [0.78, 1], from scratch,
# batch 256) sampled with the shipped base below t = 0.78; step 0 = the shipped base alone. Validation prompts,
# base only: the Counting and Positional prompts among the first 200 (51 and 66 of them).
expert = pd.read_csv(HERE / "2026-11-26-high-noise-expert-validation.csv")


def draw_expert(ax, question: str) -> None:
    ax.plot(expert["step"], expert[question], "o-", color="tab:purple", label="shipped base + expert")
    ax.axhline(expert[question].iloc[0], color="k", linestyle=":", linewidth=1, label="shipped base alone")


count_position_figure(draw_expert, "expert training steps (batch 256, 16 px)",
                      "validation accuracy (base only)", 7, "2026-11-26-high-noise-expert.png")
