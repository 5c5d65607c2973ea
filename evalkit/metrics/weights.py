"""The network weights the metrics need: a registry, a lookup order, and verified downloads.

Lookup order for a weights file: an explicit path (``--weights``) > ``$EVALKIT_WEIGHTS_DIR/<file>`` >
the user cache (``$XDG_CACHE_HOME/evalkit/weights`` or ``~/.cache/evalkit/weights``) > download (only when
allowed; the sha256 is verified before the file is moved into place atomically).
An explicit path is used as given (its hash is recorded, not enforced) so that tests and custom networks work;
files found in the weights dir or cache must match the registry hash, because a wrong file there is a mistake.
An entry whose project publishes no hash (DINOv2) has ``sha256=None``: the file is recorded (every result carries
its sha256 through the extractor's description), not enforced.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from evalkit import paths
from evalkit.hashing import sha256_file  # noqa: F401 (re-exported: callers use weights.sha256_file)
from evalkit.errors import EvalkitError


@dataclass(frozen=True)
class WeightSpec:
    name: str
    url: str
    sha256: str | None  # None: the project publishes no hash; recorded, not enforced
    file_name: str
    size_bytes: int | None
    description: str


# The hashes are the ones published by the projects: torch-fidelity/pytorch-fid release the same Inception file
# (its torch-hub name carries the hash prefix 6726825d); OpenAI's CLIP URLs carry the file's full sha256.
# Meta publishes DINOv2's files without a hash, so those entries record none.
REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in [
        WeightSpec(
            name="inception-2015-12-05",
            url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
            "weights-inception-2015-12-05-6726825d.pth",
            sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            file_name="weights-inception-2015-12-05-6726825d.pth",
            size_bytes=95_628_359,
            description="Inception-v3 FID network (TF 2015-12-05 weights, as torch-fidelity/torchmetrics/pytorch-fid)",
        ),
        WeightSpec(
            name="clip-ViT-B-32-openai",
            url="https://openaipublic.azureedge.net/clip/models/"
            "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
            sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
            file_name="clip-ViT-B-32-openai.pt",
            size_bytes=None,
            description="OpenAI CLIP ViT-B/32 (open_clip ViT-B-32, pretrained=openai)",
        ),
        WeightSpec(
            name="clip-ViT-L-14-openai",
            url="https://openaipublic.azureedge.net/clip/models/"
            "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
            sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
            file_name="clip-ViT-L-14-openai.pt",
            size_bytes=None,
            description="OpenAI CLIP ViT-L/14 (open_clip ViT-L-14, pretrained=openai)",
        ),
        WeightSpec(
            name="clip-ViT-L-14-336-openai",
            url="https://openaipublic.azureedge.net/clip/models/"
            "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
            sha256="3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
            file_name="clip-ViT-L-14-336-openai.pt",
            size_bytes=None,
            description="OpenAI CLIP ViT-L/14@336px (open_clip ViT-L-14-336, pretrained=openai; CMMD's embedding)",
        ),
        WeightSpec(
            name="dinov2-vitb14",
            url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth",
            sha256=None,
            file_name="dinov2_vitb14_pretrain.pth",
            size_bytes=None,
            description="DINOv2 ViT-B/14 backbone (Meta, LVD-142M; state dict as torch.hub loads it)",
        ),
        WeightSpec(
            name="dinov2-vitl14",
            url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
            sha256=None,
            file_name="dinov2_vitl14_pretrain.pth",
            size_bytes=None,
            description="DINOv2 ViT-L/14 backbone (Meta, LVD-142M; dgm-eval's FD-DINOv2 network)",
        ),
    ]
}

INCEPTION = "inception-2015-12-05"


def clip_weights_name(model: str, pretrained: str) -> str:
    return f"clip-{model}-{pretrained}"


def spec(name: str) -> WeightSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise EvalkitError(f"unknown weights {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def weights_dir() -> Path | None:
    value = os.environ.get("EVALKIT_WEIGHTS_DIR")
    return Path(value) if value else None


def cache_dir() -> Path:
    return paths.cache_dir("weights")


def _check_hash(path: Path, weight: WeightSpec) -> None:
    if weight.sha256 is None:
        return  # no published hash to hold the file to
    actual = sha256_file(path)
    if actual != weight.sha256:
        raise EvalkitError(
            f"{path} has sha256 {actual[:12]}..., expected {weight.sha256[:12]}... for {weight.name}; "
            f"delete it and run `evalkit weights fetch {weight.name}`"
        )


def candidates(name: str) -> list[Path]:
    """Where a registry file is looked for, in order (excluding an explicit path)."""
    weight = spec(name)
    found = []
    if weights_dir() is not None:
        found.append(weights_dir() / weight.file_name)
    found.append(cache_dir() / weight.file_name)
    return found


def resolve(name: str, explicit: str | Path | None = None, download: bool = False) -> Path:
    """The local file for weights ``name``; raise a one-line EvalkitError saying where to put it if absent."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise EvalkitError(f"weights file {path} does not exist")
        return path
    weight = spec(name)
    for path in candidates(name):
        if path.is_file():
            _check_hash(path, weight)
            return path
    if download:
        return fetch(name)
    places = " or ".join(str(p) for p in candidates(name))
    raise EvalkitError(
        f"weights {name} not found: download {weight.url} to {places} "
        f"(or run `evalkit weights fetch {name}`, or pass --weights {name}=FILE)"
    )


def fetch(name: str) -> Path:
    """Download weights into the first writable location, verifying the sha256 before it appears there."""
    weight = spec(name)
    target = candidates(name)[0]
    if target.is_file():
        _check_hash(target, weight)
        return target
    if os.environ.get("EVALKIT_OFFLINE"):
        raise EvalkitError(f"offline (EVALKIT_OFFLINE is set): put {weight.url} at {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(weight.url, timeout=60) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if weight.sha256 is not None and digest.hexdigest() != weight.sha256:
            raise EvalkitError(f"download of {weight.url} has the wrong sha256 ({digest.hexdigest()[:12]}...); "
                               "not kept")
        os.replace(tmp, target)
    except OSError as error:
        raise EvalkitError(
            f"cannot download {weight.name} ({error}); offline? put {weight.url} at {target}"
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def parse_weight_overrides(pairs: list[str], settings: Mapping[str, Mapping[str, str]] | None = None
                           ) -> dict[str, Path]:
    """``--weights NAME=PATH`` pairs -> {name: path}.

    NAME is a registry weight name (``evalkit weights list``) or an extractor name. An extractor name stands for
    the weights that extractor needs with ``settings[NAME]`` (e.g. ``clip=FILE`` with ``model=ViT-L-14`` gives
    ``clip-ViT-L-14-openai``), and is kept as a key too, so the file reaches that extractor whatever its settings
    turn out to be. The path must exist; it is used as given (not hash-checked).
    """
    from evalkit.metrics import extractors  # the extractors import this module: resolved at call time

    settings = settings or {}
    out: dict[str, Path] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise EvalkitError(f"--weights takes NAME=PATH, got {pair!r}")
        if name in REGISTRY:
            targets = [name]
        elif name in extractors.available_extractors():
            targets = extractors.extractor_weights(name, dict(settings.get(name) or {}))
        else:
            known = sorted(set(REGISTRY) | set(extractors.available_extractors()))
            raise EvalkitError(f"--weights {name}=...: unknown weights or extractor {name!r}; "
                               f"known: {', '.join(known)}")
        path = Path(value).expanduser()
        if not path.is_file():
            raise EvalkitError(f"--weights {name}={value}: no such file")
        for target in targets:
            out[target] = path
        if name not in REGISTRY:
            out[name] = path  # also under the extractor's name: it stands for its weights whatever its settings
    return out
