"""CLIP image embeddings under two published protocols, with open_clip as the network.

``clip-cleanfid`` — clean-fid's ``clip_vit_b_32`` features (``fid-clip``). clean-fid (cleanfid/clip_features.py,
fid.py) decodes with PIL, resizes the shorter side to 224 with torchvision's bicubic ``Resize`` on the PIL image
(PIL's antialiased filter), centre-crops 224 x 224, keeps uint8, then in the network wrapper scales x/255 and
normalises with CLIP's mean/std before OpenAI's ``encode_image`` of ViT-B/32; the embedding is returned as it is
(not L2-normalised). clean-fid loads OpenAI's model with the ``clip`` package, which on CUDA runs it in float16;
here the network runs in float32. Setting ``model`` (default ViT-B-32) must take 224 x 224 inputs.

``clip-cmmd`` — CMMD's embedding (google-research cmmd/io_util.py, embedding.py): the image is centre-cropped to
a square and resized with PIL bicubic (antialiased) to the model's input size (336 for ViT-L/14@336px), scaled to
[0, 1], resized bicubically to the input size again (a no-op at equal size, so not repeated here), normalised with
CLIP's mean/std, and embedded; scenic's ``encode_image`` L2-normalises the embedding, and so does this extractor.
Default model ViT-L-14-336/openai; ``model=`` lets tests and CPU users pick a small one.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from evalkit.errors import EvalkitError
from evalkit import images as image_io
from evalkit.metrics.extractors.base import ExtractorOptions, ExtractorSpec
from evalkit.metrics.extractors.clip import ClipFeatures, clip_settings, clip_weight_names, clip_weights

# OpenAI CLIP's normalisation, as both reference protocols hard-code it.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLEANFID_SIZE = 224


def _scaled_normalised(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32, x/255 then (x - mean) / std."""
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1) / 255
    return TF.normalize(x, CLIP_MEAN, CLIP_STD)


def cleanfid_clip_input(rgb: np.ndarray) -> torch.Tensor:
    """clean-fid's CLIP input: shorter side to 224 (PIL bicubic via torchvision), centre crop 224, uint8, scaled."""
    image = TF.resize(Image.fromarray(rgb), CLEANFID_SIZE, interpolation=InterpolationMode.BICUBIC)
    image = TF.center_crop(image, CLEANFID_SIZE)
    return _scaled_normalised(np.asarray(image, dtype=np.uint8))


def cmmd_clip_input(rgb: np.ndarray, size: int) -> torch.Tensor:
    """CMMD's CLIP input: centre square crop, PIL bicubic resize to size x size, uint8, scaled."""
    return _scaled_normalised(image_io.center_crop_resize(rgb, size))


def _cleanfid_protocol(features: ClipFeatures):
    if features.input_size != CLEANFID_SIZE:
        raise EvalkitError(f"clip-cleanfid resizes to {CLEANFID_SIZE} x {CLEANFID_SIZE} as clean-fid does; open_clip "
                           f"{features.model_name} takes {features.input_size} x {features.input_size}")
    described = {"protocol": "clean-fid clip_vit_b_32", "resize": "shorter side to 224, bicubic (PIL, antialias)",
                 "crop": "centre 224 x 224", "quantise": "uint8 after resize", "scale": "x/255",
                 "mean": list(CLIP_MEAN), "std": list(CLIP_STD), "input_size": CLEANFID_SIZE}
    return (lambda path: cleanfid_clip_input(image_io.load_rgb(path))), described


def _cmmd_protocol(features: ClipFeatures):
    size = features.input_size
    described = {"protocol": "CMMD (google-research cmmd)", "crop": "centre square",
                 "resize": f"PIL bicubic (antialias) to {size} x {size}", "quantise": "uint8 after resize",
                 "scale": "x/255", "mean": list(CLIP_MEAN), "std": list(CLIP_STD), "input_size": size}
    return (lambda path: cmmd_clip_input(image_io.load_rgb(path), size)), described


def _build_cleanfid(options: ExtractorOptions, settings: dict[str, str]) -> ClipFeatures:
    path, registered = clip_weights("clip-cleanfid", settings["model"], settings["pretrained"], options)
    return ClipFeatures("clip-cleanfid", settings["model"], settings["pretrained"], path, registered, options,
                        protocol=_cleanfid_protocol, normalise=False)


def _build_cmmd(options: ExtractorOptions, settings: dict[str, str]) -> ClipFeatures:
    path, registered = clip_weights("clip-cmmd", settings["model"], settings["pretrained"], options)
    return ClipFeatures("clip-cmmd", settings["model"], settings["pretrained"], path, registered, options,
                        protocol=_cmmd_protocol, normalise=True)


CLEANFID_SPEC = ExtractorSpec(
    name="clip-cleanfid",
    summary="clean-fid's clip_vit_b_32 features (FID in CLIP space, fid-clip)",
    settings=clip_settings("ViT-B-32"),
    build=_build_cleanfid,
    weights=clip_weight_names,
)

CMMD_SPEC = ExtractorSpec(
    name="clip-cmmd",
    summary="CMMD's CLIP ViT-L/14@336px embedding, L2-normalised",
    settings=clip_settings("ViT-L-14-336"),
    build=_build_cmmd,
    weights=clip_weight_names,
)
