"""Argument types shared by sub-commands: they turn bad numbers into argparse's clean one-line errors.

Every number is checked where it is parsed: integers are whole decimal numbers (no 1e3, no 1.5), floats are finite
(no nan, inf or 1e400), and each has a range. Counts that size a loop or an allocation also have a maximum, so a
typo such as ``--bootstrap 10000000000`` is one line instead of a hang or an out-of-memory kill:

    seed              0 .. 2**63 - 1 (a signed 64-bit integer, what torch and numpy generators take)
    images per run    at most MAX_IMAGES_PER_RUN (checked by `evalkit run` once the prompts are known)
    batch sizes       at most MAX_BATCH; image sides at most MAX_SIDE pixels
    repetitions       (bootstrap resamples, KID subsets) at most MAX_REPEATS
"""

from __future__ import annotations

import argparse
import math

MAX_SEED = 2**63 - 1
MAX_BATCH = 4096
MAX_SIDE = 8192
MAX_REPEATS = 100_000
MAX_IMAGES_PER_PROMPT = 1000
MAX_IMAGES_PER_RUN = 1_000_000
MAX_THREADS = 1024
MAX_WORKERS = 256


def _int_in(text: str, minimum: int, maximum: int | None, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text[:40]!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"expected a {what} integer of at most {maximum:,}, got {str(value)[:40]}")
    return value


def int_range(minimum: int, maximum: int | None = None, what: str | None = None):
    """An argparse type: a whole number in [minimum, maximum] (no maximum when None)."""
    what = what or {0: "non-negative", 1: "positive"}.get(minimum, f">= {minimum}")

    def parse(text: str) -> int:
        return _int_in(text, minimum, maximum, what)

    parse.__name__ = f"{what} integer"
    return parse


# Counts without a tighter bound of their own still fit an int64 (torch, numpy and SQLite take them).
def positive_int(text: str) -> int:
    return _int_in(text, 1, MAX_SEED, "positive")


def non_negative_int(text: str) -> int:
    return _int_in(text, 0, MAX_SEED, "non-negative")


seed = int_range(0, MAX_SEED, "non-negative")
batch_size = int_range(1, MAX_BATCH, "positive")
repeats = int_range(1, MAX_REPEATS, "positive")
workers = int_range(0, MAX_WORKERS, "non-negative")
threads = int_range(1, MAX_THREADS, "positive")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text[:40]!r}")
    return value


def finite_float(text: str) -> float:
    return _finite(text)


def positive_float(text: str) -> float:
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text[:40]}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text[:40]}")
    return value


def float_range(low: float, high: float, closed_high: bool = True):
    """An argparse type: a finite number in [low, high] (or [low, high) when not ``closed_high``)."""
    shown = f"[{low:g}, {high:g}{']' if closed_high else ')'}"

    def parse(text: str) -> float:
        value = _finite(text)
        if not (low <= value <= high if closed_high else low <= value < high):
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text[:40]}")
        return value

    parse.__name__ = f"number in {shown}"
    return parse


def key_value(text: str) -> tuple[str, str]:
    """`--opt key=value` pairs passed through to an adapter."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text[:60]!r}")
    return key.strip(), value.strip()


def layer_list(text: str) -> list[int]:
    """Comma-separated hidden-state indices; 'last' means -1 (a leading '-1' would read as an option)."""
    try:
        return [-1 if item.strip() == "last" else int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer indices like last,0 or 6,0, got {text[:60]!r}") from None
