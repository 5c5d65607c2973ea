"""DINOv2 extractors against independent code on the same random weights in facebookresearch's file layout:
the network against transformers' Dinov2Model (facebook's keys mapped to its own, as its conversion script does),
the preprocessing against dgm-eval's torchvision transform. The networks are shallow (1-2 blocks) but full width.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from evalkit.errors import EvalkitError
from evalkit.metrics.extractors import ExtractorOptions, create_extractor
from evalkit.metrics.extractors.dinov2 import dgm_eval_input
from evalkit.images import list_images, load_rgb
from tests.metrics.conftest import save_random_dinov2

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def vitb_weights(tmp_path_factory):
    return save_random_dinov2(tmp_path_factory.mktemp("dinov2") / "dinov2_vitb14_pretrain.pth", 768, depth=2)


def hub_interpolated(pos_embed, grid=16):
    """facebookresearch/dinov2 interpolate_pos_encoding for a 224 px input: bicubic at scale (16 + 0.1) / 37."""
    side = int((pos_embed.shape[1] - 1) ** 0.5)
    patch = pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((grid + 0.1) / side,) * 2, mode="bicubic")
    return torch.cat([pos_embed[:, :1], patch.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], dim=1)


def transformers_dinov2(path, heads):
    """transformers' Dinov2Model holding a facebook-layout checkpoint (position embeddings as the hub uses them)."""
    from transformers import Dinov2Config, Dinov2Model

    state = torch.load(path, weights_only=True)
    width = state["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    config = Dinov2Config(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads,
                          intermediate_size=4 * width, image_size=224, patch_size=14, layer_norm_eps=1e-6)
    mapped = {"embeddings.cls_token": state["cls_token"], "embeddings.mask_token": state["mask_token"],
              "embeddings.position_embeddings": hub_interpolated(state["pos_embed"]),
              "embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
              "embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
              "layernorm.weight": state["norm.weight"], "layernorm.bias": state["norm.bias"]}
    for i in range(depth):
        ours, theirs = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            q, k, v = state[ours + f"attn.qkv.{kind}"].chunk(3, dim=0)
            mapped.update({theirs + f"attention.q_proj.{kind}": q, theirs + f"attention.k_proj.{kind}": k,
                           theirs + f"attention.v_proj.{kind}": v,
                           theirs + f"attention.o_proj.{kind}": state[ours + f"attn.proj.{kind}"]})
            for name in ("norm1", "norm2", "mlp.fc1", "mlp.fc2"):
                mapped[theirs + f"{name}.{kind}"] = state[ours + f"{name}.{kind}"]
        mapped[theirs + "layer_scale1.lambda1"] = state[ours + "ls1.gamma"]
        mapped[theirs + "layer_scale2.lambda1"] = state[ours + "ls2.gamma"]
    model = Dinov2Model(config)
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def dgm_eval_transform(path):
    """dgm-eval models/dinov2.py DINOv2Encoder.transform (default resize) on the decoded RGB image."""
    compose = T.Compose([T.Resize((224, 224), T.InterpolationMode.BICUBIC), T.ToTensor(),
                         T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    return compose(Image.open(path).convert("RGB"))


def test_preprocessing_equals_dgm_eval_transform(mixed_size_folder):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    gaps = []
    for path in list_images(mixed_size_folder):
        ours = dgm_eval_input(load_rgb(path))
        assert ours.shape == (3, 224, 224)
        assert torch.allclose(ours, dgm_eval_transform(path), atol=1e-6)
        # dgm-eval --clean_resize: per-channel float PIL bicubic, clipped, /255 (resizer.pil_resize)
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
        clean = np.stack([np.asarray(Image.fromarray(rgb[:, :, c], mode="F").resize((224, 224), Image.BICUBIC))
                          for c in range(3)]).clip(0, 255)
        expected = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)(torch.from_numpy(clean) / 255)
        assert torch.allclose(dgm_eval_input(load_rgb(path), "clean"), expected, atol=1e-6)
        # torch-fidelity's DINOv2 input (TF1 bilinear on uint8 values) is a different image: documented, not used
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        tf1 = interpolate_bilinear_2d_like_tensorflow1x(x, size=(224, 224), align_corners=False)[0] / 255
        tf1 = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)(tf1)
        gaps.append(float((tf1 - ours).abs().max()))
    assert max(gaps) > 0.1


def test_vitb14_cls_features_equal_transformers_dinov2(vitb_weights, mixed_size_folder):
    paths = list_images(mixed_size_folder)[:3]
    ours = create_extractor("dinov2-vitb14", ExtractorOptions(weights=vitb_weights, workers=0, batch_size=2))
    reference = transformers_dinov2(vitb_weights, heads=12)
    with torch.no_grad():
        theirs = reference(pixel_values=torch.stack([dgm_eval_transform(p) for p in paths])).pooler_output.numpy()
    feats = ours.compute(paths)
    assert feats.shape == (len(paths), 768) and feats.dtype == np.float32
    assert np.allclose(feats, theirs, rtol=1e-4, atol=1e-4)
    assert feats.std(axis=0).mean() > 0.05  # informative: images differ
    description = ours.description()
    assert description["dim"] == 768 and description["weights_name"] == "dinov2-vitb14"
    assert description["normalised"] is False and "2 blocks" in description["network"]


def test_vitl14_cls_features_equal_transformers_dinov2(tmp_path, mixed_size_folder):
    weights = save_random_dinov2(tmp_path / "dinov2_vitl14_pretrain.pth", 1024, depth=1, seed=3)
    paths = list_images(mixed_size_folder)[:2]
    ours = create_extractor("dinov2-vitl14", ExtractorOptions(weights=weights, workers=0))
    with torch.no_grad():
        theirs = transformers_dinov2(weights, heads=16)(
            pixel_values=torch.stack([dgm_eval_transform(p) for p in paths])).pooler_output.numpy()
    assert np.allclose(ours.compute(paths), theirs, rtol=1e-4, atol=1e-4)


def test_position_embeddings_follow_the_hub_not_timms_default_resampling(vitb_weights):
    """timm's loader resamples the 37 x 37 grid to 16 x 16 with antialiasing and no offset; the hub network
    dgm-eval runs does not. The difference is what this extractor's own interpolation is there for."""
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    ours = create_extractor("dinov2-vitb14", ExtractorOptions(weights=vitb_weights)).net
    state = torch.load(vitb_weights, weights_only=True)
    assert torch.allclose(ours.pos_embed, hub_interpolated(state["pos_embed"]), atol=1e-6)
    default = timm.create_model("vit_base_patch14_dinov2", pretrained=False, img_size=224, depth=2, num_classes=0)
    default.load_state_dict(checkpoint_filter_fn(state, default))
    assert (default.pos_embed - ours.pos_embed).abs().max() > 1e-3


def test_wrong_dinov2_files_are_clear_errors(tmp_path, vitb_weights):
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(EvalkitError, match="not a DINOv2 backbone state dict"):
        create_extractor("dinov2-vitb14", ExtractorOptions(weights=tmp_path / "other.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EvalkitError, match="not a DINOv2 state dict"):
        create_extractor("dinov2-vitb14", ExtractorOptions(weights=tmp_path / "junk.pth"))
    with pytest.raises(EvalkitError, match="768-wide ViT; DINOv2 ViT-L/14 is 1024-wide"):
        create_extractor("dinov2-vitl14", ExtractorOptions(weights=vitb_weights))
    state = torch.load(vitb_weights, weights_only=True)
    state["blocks.1.mlp.fc1.weight"] = state["blocks.1.mlp.fc1.weight"][:5]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(EvalkitError, match="does not fit DINOv2 ViT-B/14 .*size mismatch.*blocks.1.mlp.fc1.weight"):
        create_extractor("dinov2-vitb14", ExtractorOptions(weights=tmp_path / "cut.pth"))
    with pytest.raises(EvalkitError, match="resize='bilinear' is not one of dgm-eval, clean"):
        create_extractor("dinov2-vitb14", ExtractorOptions(weights=vitb_weights, settings={"resize": "bilinear"}))
