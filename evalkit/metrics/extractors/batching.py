"""Running a network over image files in batches, decoding and resizing the next batches in threads meanwhile."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from evalkit.errors import EvalkitError


def prefetch_batches(items: Sequence, load: Callable, batch_size: int, workers: int) -> Iterator[list]:
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


def embed_files(
    paths: Sequence[Path],
    load: Callable[[Path], torch.Tensor],
    forward: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    *,
    device: str,
    batch_size: int,
    workers: int,
    desc: str,
    channels_last: bool = False,
) -> np.ndarray:
    """N x dim float32 rows ``forward(stack(load(p) for p in batch))`` in the order of ``paths``.

    A non-finite feature is an error naming its image, never a silently wrong statistic downstream.
    """
    paths = [Path(p) for p in paths]
    if batch_size < 1:
        raise EvalkitError(f"batch size must be at least 1, got {batch_size}")
    out = np.empty((len(paths), dim), dtype=np.float32)
    done = 0
    with torch.inference_mode(), tqdm(total=len(paths), desc=desc, unit="img", leave=False) as bar:
        for inputs in prefetch_batches(paths, load, batch_size, workers):
            batch = torch.stack(inputs).to(device)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            feats = forward(batch).float().cpu().numpy()
            if feats.shape != (len(inputs), dim):
                raise EvalkitError(f"{desc}: the network gave features of shape {feats.shape}, expected "
                                   f"({len(inputs)}, {dim})")
            bad = ~np.isfinite(feats).all(axis=1)
            if bad.any():
                raise EvalkitError(f"{desc}: non-finite features for {paths[done + int(np.argmax(bad))]}")
            out[done : done + len(feats)] = feats
            done += len(feats)
            bar.update(len(feats))
    return out
