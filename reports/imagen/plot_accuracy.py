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

# Session 4 (H100): bases from scratch with early MiniLM layers + coordinate planes, three variants x two
# replicates, scored on the *validation* prompts; session 1's base (held-out prompts) dashed for reference.
runs = pd.read_csv(HERE / "gpu_session4_validation.csv")
runs = runs[runs["mode"] == "guided"]
session1 = frame[frame["mode"] == "guided"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
variants = {"A": "tab:blue", "B": "tab:orange", "C": "tab:green", "A-continued": "tab:purple"}
for ax, question in zip(axes, ("count", "position")):
    ax.plot(session1["step"], session1[question], "k--", linewidth=1, label="session-1 recipe (held-out)")
    for (run, replicate), rows in runs.groupby(["run", "replicate"]):
        ax.plot(rows["step"], rows[question], "-o", markersize=3, color=variants[run],
                alpha=0.5 + 0.5 * (replicate == 2), label=f"{run} #{replicate}")
    ax.axhline(0.5, color="grey", linewidth=0.5)
    ax.set_title(question)
    ax.set_xlabel("base training steps (batch 128)")
    ax.set_ylim(0, 1)
axes[0].set_ylabel("accuracy (200 prompts)")
axes[1].legend(fontsize=7)
fig.tight_layout()
fig.savefig(HERE / "gpu_session4_runs.png", dpi=100)

# Session 5 (CPU, 2 cores): fine-tunes of the shipped base toward position (v-prediction, token refiner, attention
# positions, high-noise share, token layout bias), scored by the train eval hook on 100 validation prompts.
cpu = pd.read_csv(HERE / "cpu_session5_validation.csv")
cpu = cpu[cpu["mode"] == "guided"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
for ax, question in zip(axes, ("count", "position")):
    for run, rows in cpu.groupby("run", sort=False):
        ax.plot(rows["steps_since_shipped"], rows[question], "o-" if len(rows) > 1 else "o", label=run)
    ax.axhline(0.5, color="grey", linewidth=0.5)
    ax.set_title(question)
    ax.set_xlabel("CPU fine-tune steps since the shipped base (batch 64)")
    ax.set_ylim(0, 1)
axes[0].set_ylabel("validation accuracy (100 prompts, base only)")
axes[1].legend(fontsize=6)
fig.tight_layout()
fig.savefig(HERE / "cpu_session5_runs.png", dpi=100)
