"""Plain-text pieces the report's section builders share: estimate cells, anchors, short hashes, key fields.

Everything here returns plain text (escaping is the renderers' job, per output format).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

from evalkit.estimate import Estimate
from evalkit.reports.document import Cell
from evalkit.reports.tables import format_number

UP, DOWN = "\u2191", "\u2193"  # ↑ higher is better, ↓ lower is better


def row_scale(estimates: Sequence[Estimate | None]) -> float | None:
    """The largest |value| of a row, so that every cell of the row is written in one number style."""
    values = [abs(e.value) for e in estimates if e is not None and e.value is not None]
    return max(values) if values else None


def estimate_cell(est: Estimate | None, scale: float | None = None) -> Cell:
    """``value [low, high] · n=N`` in the row's style (``scale``, see ``row_scale``), the value apart from its
    interval and N (``Cell``); a dash for no number."""
    if est is None:
        return Cell("\u2014")
    if est.value is None:
        return Cell("n/a", f"n={est.n}", f"n/a \u00b7 n={est.n}")
    scale = est.value if scale is None else scale
    value = format_number(est.value, scale)
    if not est.has_interval:
        return Cell(value, f"n={est.n}", f"{value} \u00b7 n={est.n}")
    return Cell(value, f"[{format_number(est.low, scale)}, {format_number(est.high, scale)}] \u00b7 n={est.n}")


def direction(higher_is_better: bool | None) -> str:
    if higher_is_better is None:
        return "?"
    return f"{UP} higher" if higher_is_better else f"{DOWN} lower"


def slug(*parts: object) -> str:
    """An anchor / file-name stem: lower-case ``[a-z0-9-]+`` (never empty, never a path)."""
    text = "-".join(str(p) for p in parts).lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text or "x"


def unique_slug(base: str, taken: set[str]) -> str:
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name


def short_hash(value: Any, length: int = 12) -> str:
    """``sha256:abcdef...`` or a bare hex digest shortened to ``length`` hex digits; 'none' when absent."""
    if not value:
        return "none"
    text = str(value)
    algo, _, digest = text.rpartition(":")
    return f"{algo + ':' if algo else ''}{digest[:length]}"


def compact(value: Any) -> str:
    """A settings mapping as ``k=v, k=v`` (nested values as compact JSON); 'none' when empty."""
    if value in (None, {}, [], ""):
        return "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_scalar(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def reference_text(reference: Any) -> str:
    if not isinstance(reference, Mapping):
        return "none"
    bits = [str(reference.get("id") or "?")]
    if reference.get("kind"):
        bits.append(str(reference["kind"]))
    if reference.get("hash"):
        bits.append(short_hash(reference["hash"]))
    if reference.get("n") is not None:
        bits.append(f"n={reference['n']}")
    return " \u00b7 ".join(bits)


def extractor_texts(extractor: Any) -> tuple[str, str, str]:
    """(name, weights sha256 short, preprocessing) of a key's extractor block."""
    if not isinstance(extractor, Mapping):
        return "none", "none", "none"
    return (str(extractor.get("name") or "?"), short_hash(extractor.get("weights_sha256")),
            compact(extractor.get("preprocessing")))
