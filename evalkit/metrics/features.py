"""Inception features of an image set, computed once and cached on disk.

The cache key is the ordered list of image content hashes + the weights file's sha256 + the resize mode, so FID,
KID and per-category numbers all reuse one pass, a rerun costs one read of the files, and a changed image, network
or resize mode can never hit a stale entry. Cache: ``$EVALKIT_CACHE_DIR/features`` (default
``$XDG_CACHE_HOME/evalkit/features`` or ``~/.cache/evalkit/features``).
"""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from evalkit import atomic, paths
from evalkit.metrics import images as image_io
from evalkit.metrics import inception
from evalkit.metrics.weights import sha256_file


def feature_cache_dir() -> Path:
    return paths.cache_dir("features")


def prefetch_batches(
    items: Sequence, load: Callable, batch_size: int, workers: int
) -> Iterator[list]:
    """Yield lists of ``load(item)`` per batch, decoding the next batches in threads while the caller computes.
    At most two batches are in flight, so memory stays flat in the number of images."""
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    if workers <= 0:
        for batch in batches:
            yield [load(item) for item in batch]
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for batch in batches:
            pending.append([pool.submit(load, item) for item in batch])
            if len(pending) > 2:
                yield [f.result() for f in pending.pop(0)]
        for futures in pending:
            yield [f.result() for f in futures]


@dataclass
class InceptionExtractor:
    """Inception pool3 features for lists of image files, with a resize mode and a weights file."""

    weights_path: Path
    resize: str = inception.DEFAULT_RESIZE
    device: str = "cpu"
    batch_size: int = 32
    workers: int = 2
    use_cache: bool = True
    crop_size: int | None = None  # centre-crop + resize to this side before the resize mode (reference protocol)

    def __post_init__(self):
        inception.check_resize_mode(self.resize)
        self.weights_path = Path(self.weights_path)
        self.weights_sha256 = sha256_file(self.weights_path)
        self._net = None

    @property
    def description(self) -> dict:
        return {"network": "inception-v3-compat pool3 (torch-fidelity)", "weights_sha256": self.weights_sha256,
                "resize": self.resize, "feature_dim": inception.FEATURE_DIM, "crop_size": self.crop_size}

    def _network(self):
        if self._net is None:
            net = inception.load_network(self.weights_path).to(self.device)
            # channels_last speeds Inception's convolutions up on CPU (and GPU) without changing the maths.
            self._net = net.to(memory_format=torch.channels_last)
        return self._net

    def _load(self, path: Path) -> torch.Tensor:
        rgb = image_io.load_rgb(path)
        if self.crop_size:
            rgb = image_io.center_crop_resize(rgb, self.crop_size)
        return inception.preprocess(rgb, self.resize)

    def compute(self, paths: Sequence[Path], desc: str = "inception") -> np.ndarray:
        """N x 2048 float32 features, in the order of ``paths`` (no cache)."""
        net = self._network()
        out = np.empty((len(paths), inception.FEATURE_DIM), dtype=np.float32)
        done = 0
        with torch.inference_mode(), tqdm(total=len(paths), desc=desc, unit="img", leave=False) as bar:
            for inputs in prefetch_batches(list(paths), self._load, self.batch_size, self.workers):
                batch = torch.stack(inputs).to(self.device).contiguous(memory_format=torch.channels_last)
                feats = inception.pool3_features(net, batch).float().cpu().numpy()
                out[done : done + len(feats)] = feats
                done += len(feats)
                bar.update(len(feats))
        return out

    def cache_key(self, hashes: Sequence[str]) -> str:
        digest = hashlib.sha256(json.dumps(self.description, sort_keys=True).encode())
        for h in hashes:
            digest.update(h.encode())
        return digest.hexdigest()

    def features(self, paths: Sequence[Path], desc: str = "inception") -> np.ndarray:
        """Features of ``paths``, from the cache when this exact set was seen before."""
        paths = [Path(p) for p in paths]
        if not self.use_cache:
            return self.compute(paths, desc)
        hashes = [image_io.content_hash(p) for p in paths]
        target = feature_cache_dir() / f"{self.cache_key(hashes)}.npy"
        if target.is_file():
            try:
                cached = np.load(target)
                if cached.shape == (len(paths), inception.FEATURE_DIM):
                    return cached
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed and replaced
        feats = self.compute(paths, desc)
        buffer = io.BytesIO()
        np.save(buffer, feats)
        try:
            atomic.write_bytes(target, buffer.getvalue())
        except OSError:
            pass  # an unwritable cache only costs speed
        return feats
