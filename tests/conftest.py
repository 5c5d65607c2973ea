"""Test-wide settings: never touch the network, read benchmark data from ../shared/benchmarks, keep caches in tmp."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "benchmarks").resolve()

if os.environ.get("EVALKIT_DATA"):
    # tests run evalkit in other folders (an installed wheel from tmp): a relative setting keeps meaning the folder
    # it named where the tests were started
    os.environ["EVALKIT_DATA"] = str(Path(os.environ["EVALKIT_DATA"]).resolve())
elif SHARED_DATA.is_dir():
    os.environ["EVALKIT_DATA"] = str(SHARED_DATA)
os.environ["EVALKIT_OFFLINE"] = "1"  # benchmark downloads fail fast instead of reaching out
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="evalkit-test-cache-")
for _user_setting in ("EVALKIT_CACHE_DIR", "EVALKIT_WEIGHTS_DIR", "EVALKIT_RUNS"):  # a user's caches stay out of tests
    os.environ.pop(_user_setting, None)
os.environ.setdefault("TQDM_DISABLE", "1")


def shared_data_or_skip() -> Path:
    if not (SHARED_DATA / "drawbench" / "prompts.csv").is_file():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    return shared_data_or_skip()
