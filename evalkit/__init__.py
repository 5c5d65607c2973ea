"""evalkit: evaluate text-to-image models the way the Imagen paper did.

Library entry points (the CLI wraps them): ``evalkit.score_run(run_dir, metrics=[...], reference=..., options=...)``
writes a run's metrics.json; ``evalkit.distance(a, b, metrics=[...])`` compares two image sets.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "score_run", "distance", "ScoringConfig"]


def __getattr__(name: str):
    # Imported on first use, so `import evalkit` (and `evalkit --help`) stays free of torch.
    if name in ("score_run", "distance", "ScoringConfig"):
        from evalkit.metrics import score

        return getattr(score, name)
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
