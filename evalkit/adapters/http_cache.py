"""The ``http`` adapter's response cache: every image a server sent is kept, so no request is ever paid for twice.

Where: ``--opt cache_dir=DIR``, by default ``<evalkit cache>/http`` (``evalkit.paths.cache_dir``:
``$EVALKIT_CACHE_DIR`` > ``$XDG_CACHE_HOME/evalkit`` > ``~/.cache/evalkit``). It is independent of the run
directory on purpose. A run directory already keeps every image it saved, but saves a batch's images only once
the whole batch is back; the cache keeps each reply the moment it arrives, so a crash in the middle of a batch
loses nothing that was paid for. And many different runs send the same requests: ``--limit 32`` after
``--limit 8`` (nested subsets), ``--images-per-prompt 4`` after 2 (seeds depend on the prompt row and sample
only), another ``--out``, a deleted run directory. Deleting the folder is always safe; it only costs requests.

Key: the sha256 of the canonical JSON (sorted keys, no spaces) of ``{"endpoint", "api", "body", "seed"}``: the
URL the request goes to, the contract, the exact JSON body sent (prompt, size, model, ``extra.*`` fields...) and
the image's seed, which the OpenAI body lacks but which tells two samples of one prompt apart. No header is part
of it, so the API key is neither in the key nor in the file, and rotating the key keeps the cache valid.

File: ``DIR/<key[:2]>/<key>.json``, written atomically (``evalkit.atomic``) holding the request (endpoint, api,
body, seed), the image bytes as the server sent them (base64), and what evalkit learned making it: ``latency_ms``
(client-side, the successful attempt), ``attempts``, the server's ``cost`` and ``latency_ms`` if it sent them, and
``fetched_at``. An entry that does not read back (edited by hand, another format) is ignored and replaced.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from evalkit import atomic
from evalkit.adapters.http_protocol import ContractError, MalformedReply, image_from_bytes
from evalkit.errors import EvalkitError

FORMAT = "evalkit-http-cache/1"


@dataclass(frozen=True)
class Entry:
    """One image and how it was obtained."""

    image: Image.Image
    encoded: bytes
    latency_ms: float
    attempts: int
    cost: float | None
    server_latency_ms: float | None
    revised_prompt: str | None


def request_key(endpoint: str, api: str, body: dict[str, Any], seed: int) -> tuple[str, dict[str, Any]]:
    """(key, the request it names); see the module docstring."""
    request = {"endpoint": endpoint, "api": api, "body": body, "seed": int(seed)}
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest(), request


class ResponseCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder).expanduser()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EvalkitError(
                f"cannot create the http response cache {self.folder}: {error.strerror or error}; "
                f"pass --opt cache_dir=DIR"
            ) from None

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def load(self, key: str, width: int, height: int) -> Entry | None:
        """The cached image for ``key``, or None when there is none (or it does not read back)."""
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("key") != key:
                raise ValueError("not an entry of this cache")
            encoded = base64.b64decode(data["image"], validate=True)
            image = image_from_bytes(encoded, path.name, width, height)
            return Entry(image, encoded, float(data["latency_ms"]), int(data["attempts"]), data.get("cost"),
                         data.get("server_latency_ms"), data.get("revised_prompt"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, MalformedReply, ContractError) as error:
            warnings.warn(f"ignoring the unreadable http cache entry {path} ({error}); it will be fetched again")
            return None

    def store(self, key: str, request: dict[str, Any], entry: Entry) -> None:
        record = {
            "format": FORMAT, "key": key, "request": request,
            "image": base64.b64encode(entry.encoded).decode("ascii"),
            "latency_ms": entry.latency_ms, "attempts": entry.attempts, "cost": entry.cost,
            "server_latency_ms": entry.server_latency_ms, "revised_prompt": entry.revised_prompt,
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            atomic.write_json(self.path(key), record)
        except OSError as error:
            raise EvalkitError(f"cannot write the http response cache {self.path(key)}: {error.strerror or error}") from None
