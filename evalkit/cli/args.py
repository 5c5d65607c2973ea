"""Argument types shared by sub-commands: they turn bad numbers into argparse's clean one-line errors."""

from __future__ import annotations

import argparse


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "positive")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "non-negative")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def key_value(text: str) -> tuple[str, str]:
    """`--opt key=value` pairs passed through to an adapter."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def layer_list(text: str) -> list[int]:
    """Comma-separated hidden-state indices; 'last' means -1 (a leading '-1' would read as an option)."""
    try:
        return [-1 if item.strip() == "last" else int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer indices like last,0 or 6,0, got {text!r}") from None
