"""A run's spec: everything that determines its images. The run id is a hash of it, so the same command
reuses the same run directory (and resumes it), while any change that alters images gets a new one."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunSpec:
    benchmark: str
    benchmark_hash: str
    adapter: str
    adapter_config: dict[str, Any]
    checkpoint_hash: str | None
    images_per_prompt: int
    seed: int
    height: int
    width: int
    prompt_indices: tuple[int, ...] = field(default=())  # the rows generated (all of them unless --limit)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prompt_indices"] = list(self.prompt_indices)
        return data

    def fingerprint(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def run_id(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.benchmark}-{self.adapter}").strip("-")[:60]
        return f"{slug}-{self.fingerprint()[:12]}"


def image_seed(base_seed: int, prompt_index: int, sample: int) -> int:
    """The seed of one image: a hash of (run seed, prompt row, sample), so it does not depend on batch size,
    on which other prompts are in the run, or on the order images are generated in."""
    digest = hashlib.sha256(f"evalkit:{base_seed}:{prompt_index}:{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
