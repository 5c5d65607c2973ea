"""One on-disk cache of features for every extractor.

Key = sha256 over json(extractor.description()) followed by the content hashes of the images in order. The
description names the extractor, the weights file's sha256 and every preprocessing choice, so FID, KID, CMMD and
per-category numbers reuse one pass, a rerun costs one read of the files, and a changed image, network or setting
can never hit a stale entry. Cache folder: ``$EVALKIT_CACHE_DIR/features`` (default ``$XDG_CACHE_HOME/evalkit/
features`` or ``~/.cache/evalkit/features``). A damaged entry is recomputed; an unwritable cache only costs speed.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from evalkit import atomic, paths as evalkit_paths
from evalkit.errors import EvalkitError
from evalkit import images as image_io


def feature_cache_dir() -> Path:
    return evalkit_paths.cache_dir("features")


def cache_key(description: dict, hashes: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode())
    for h in hashes:
        digest.update(h.encode())
    return digest.hexdigest()


def _read(target: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if not target.is_file():
        return None
    try:
        cached = np.load(target, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # a damaged entry is recomputed and replaced
    if cached.shape != shape or cached.dtype != np.float32 or not np.isfinite(cached).all():
        return None
    return cached


def _write(target: Path, feats: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, feats)
    try:
        atomic.remove_stale_temps(target.parent)  # entries a killed scoring was writing
        atomic.write_bytes(target, buffer.getvalue())
    except OSError:
        pass  # an unwritable cache only costs speed


def _run(compute: Callable, paths: list[Path], dim: int, name: str) -> np.ndarray:
    feats = np.ascontiguousarray(compute(paths), dtype=np.float32)
    if feats.shape != (len(paths), dim):
        raise EvalkitError(f"{name} gave features of shape {feats.shape}, expected ({len(paths)}, {dim})")
    return feats


def cached_features(paths: Sequence[Path], description: dict, dim: int, compute: Callable[[list[Path]], np.ndarray],
                    use_cache: bool = True) -> np.ndarray:
    """``compute(paths)``, or the stored result for the same images under the same description."""
    paths = [Path(p) for p in paths]
    name = str(description.get("extractor", "the feature extractor"))
    if not use_cache:
        return _run(compute, paths, dim, name)
    hashes = [image_io.content_hash(p) for p in paths]
    target = feature_cache_dir() / f"{cache_key(description, hashes)}.npy"
    found = _read(target, (len(paths), dim))
    if found is not None:
        return found
    feats = _run(compute, paths, dim, name)
    _write(target, feats)
    return feats


def _takes_desc(compute: Callable) -> bool:
    try:
        return "desc" in inspect.signature(compute).parameters
    except (TypeError, ValueError):
        return False


def features(paths: Sequence[Path], extractor, use_cache: bool = True, desc: str | None = None) -> np.ndarray:
    """N x extractor.dim float32 features of ``paths`` through ``extractor``, cached on disk (see module doc).

    ``desc`` labels the progress bar when the extractor's ``compute`` takes a ``desc`` keyword (built-ins do).
    In a distributed command (evalkit.dist) each rank computes its positional shard and every rank gets all rows
    back in order: the same features as one process (each image's features do not depend on its batch-mates)."""
    if desc is not None and _takes_desc(extractor.compute):
        def compute(p):
            return extractor.compute(p, desc=desc)
    else:
        compute = extractor.compute
    from evalkit import dist

    world = dist.active()
    if not world.distributed:
        return cached_features(paths, extractor.description(), extractor.dim, compute, use_cache)
    return _sharded_features([Path(p) for p in paths], extractor, compute, use_cache, world)


def _sharded_features(paths: list[Path], extractor, compute: Callable, use_cache: bool, world) -> np.ndarray:
    """The whole set's cache entry if any rank left one; else each rank's shard (cached per shard), gathered, and
    the whole set's entry written by rank 0, so a later single-process scoring reuses it."""
    from evalkit import dist

    description, dim = extractor.description(), extractor.dim
    target = None
    if use_cache:
        target = feature_cache_dir() / f"{cache_key(description, [image_io.content_hash(p) for p in paths])}.npy"
        found = _read(target, (len(paths), dim))
        if dist.all_true(found is not None, world):  # all or none: no rank may skip the collectives below alone
            return found
    mine, error = None, None
    try:
        mine = cached_features(dist.shard(paths, world), description, dim, compute, use_cache)
    except EvalkitError as failure:
        error = failure
    dist.all_ok(error, world, f"{description.get('extractor', 'feature extraction')} features")
    feats = dist.gather_rows(mine, world, len(paths))
    if target is not None and world.is_main:
        _write(target, feats)
    return feats
