"""Content hashes of files, streamed so multi-GB checkpoints never sit in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 4 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
