"""What the experiments share: where reports go, the shipped checkpoint, atomic report and figure writes."""

from __future__ import annotations

import io
from pathlib import Path

from evalkit import atomic

# Relative to the working directory: the experiments are run from the repository root.
REPORTS_DIR = Path("reports") / "imagen"


def shipped_checkpoint() -> Path:
    from evalkit.adapters.imagen import DEFAULT_CHECKPOINT

    return DEFAULT_CHECKPOINT


def write_report(path: str | Path, text: str) -> Path:
    """Write a Markdown report atomically (a crash leaves the old report, never half a new one)."""
    path = Path(path)
    atomic.write_text(path, text)
    return path


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    path = Path(path)
    atomic.write_bytes(path, buffer.getvalue())
    return path


def agg_pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_as_script(main) -> None:
    """`python -m evalkit.experiments.NAME`: bad input (an EvalkitError) is one line on stderr and exit 2."""
    import sys

    from evalkit.errors import EvalkitError

    try:
        code = main()
    except EvalkitError as error:
        print(f"evalkit: error: {error}", file=sys.stderr)
        code = 2
    sys.exit(int(code or 0))
