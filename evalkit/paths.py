"""Where evalkit keeps caches: ``$EVALKIT_CACHE_DIR`` > ``$XDG_CACHE_HOME/evalkit`` > ``~/.cache/evalkit``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The evalkit cache root, or a sub-folder of it (not created here)."""
    if os.environ.get("EVALKIT_CACHE_DIR"):
        root = Path(os.environ["EVALKIT_CACHE_DIR"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalkit"
    return root.joinpath(*parts)
