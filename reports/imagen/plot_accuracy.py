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
