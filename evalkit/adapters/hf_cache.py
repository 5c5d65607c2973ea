"""Finding a diffusers pipeline on this machine: a local directory, or a repository in the user's Hugging Face cache.

Nothing is ever downloaded. A repository id (``org/name``) is looked up with huggingface_hub's own cache lookup,
``snapshot_download(repo_id, local_files_only=True)``: the snapshot that ``refs/main`` points to under

    $HF_HUB_CACHE/models--org--name/snapshots/<commit>/      (default ~/.cache/huggingface/hub, or $HF_HOME/hub)

which is where ``hf download org/name`` and ``from_pretrained`` put it. ``$HF_HUB_CACHE`` is read when the lookup
runs, not when huggingface_hub was imported. A repository that is not there is one line naming the repository and
the cache folder that was searched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import EvalkitError

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class PipelineLocation:
    """A pipeline directory, and the cache repository and snapshot commit it came from (None for a plain folder)."""

    path: Path
    repo: str | None = None
    revision: str | None = None

    def describe(self) -> dict[str, str | None]:
        """What the run manifest records about where the weights came from."""
        return {"model_path": str(self.path), "repo": self.repo, "revision": self.revision}


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder: $HF_HUB_CACHE if set now, else huggingface_hub's own default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def is_repo_id(text: str) -> bool:
    return REPO_ID.fullmatch(text) is not None


def require_pipeline_dir(path: Path, what: str) -> Path:
    if not (path / "model_index.json").is_file():
        raise EvalkitError(
            f"{what}: {path} is not a diffusers pipeline (no model_index.json); save one with pipeline.save_pretrained(DIR)"
        )
    return path


def cached_snapshot(repo_id: str, what: str, local_dir_too: bool = False, instead: str = "give a local directory") -> PipelineLocation:
    """The cached snapshot of ``repo_id`` (local files only), or one line saying where it was looked for."""
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir()
    try:
        found = Path(snapshot_download(repo_id, cache_dir=str(cache), local_files_only=True))
    except (OSError, ValueError):  # huggingface_hub's not-in-cache and invalid-id errors are both
        neither = "is neither a local directory nor" if local_dir_too else "is not"
        raise EvalkitError(
            f"{what}: {repo_id} {neither} in the Hugging Face cache {cache} (looked for "
            f"models--{repo_id.replace('/', '--')}/snapshots/; nothing is downloaded: run `hf download {repo_id}` "
            f"where the Hub is reachable, or {instead})"
        ) from None
    require_pipeline_dir(found, f"{what} ({repo_id} in the Hugging Face cache)")
    return PipelineLocation(found.resolve(), repo=repo_id, revision=found.name)


def locate_pipeline(spec: str, what: str) -> PipelineLocation:
    """``spec`` as a local pipeline directory, else (when it reads ``org/name``) as a cached Hub repository."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return PipelineLocation(require_pipeline_dir(path, what).resolve())
    if not path.exists() and is_repo_id(spec):
        return cached_snapshot(spec, what, local_dir_too=True)
    raise EvalkitError(f"{what}: {spec}: no such directory")
