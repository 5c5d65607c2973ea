"""Tiny, randomly initialised DeepFloyd IF and SDXL pipelines of the real classes, saved to disk, and a fake
Hugging Face cache to find them in; for offline tests.

``make_tiny_if(dir)`` writes ``dir/stage_1`` (an IFPipeline: T5EncoderModel + T5Tokenizer, an IF-style UNet that
predicts noise and a learned variance, IF's DDPM scheduler with dynamic thresholding) and ``dir/stage_2`` (an
IFSuperResolutionPipeline: a 6-channel UNet with the noise level as its class embedding, and its
``image_noising_scheduler``): 8x8 -> 32x32, the same x4 as IF's 64 -> 256. The T5 tokenizer is built from a
hand-made Unigram vocabulary (transformers' T5Tokenizer is backed by the ``tokenizers`` library and takes a
vocabulary directly), so no sentencepiece model is needed. ``make_tiny_sdxl(dir)`` writes a StableDiffusionXLPipeline
with two CLIP text encoders (64x64 by default). ``fake_hf_cache`` lays a directory out as the hub cache does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import string
from pathlib import Path

from tests.fixtures_tiny_pipeline import _tiny_clip_tokenizer

T5_WIDTH = 24
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def _tiny_t5_tokenizer():
    """T5's layout (<pad>=0, </s>=1, <unk>=2), then single letters and digits and word-initial letters."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in string.ascii_lowercase + string.digits]
    vocab += [("\u2581" + c, -2.5) for c in string.ascii_lowercase]
    vocab += [("\u2581a", -1.0), ("\u2581red", -1.0), ("\u2581the", -1.0)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _if_unet(in_channels: int, sample_size: int, super_resolution: bool):
    """IF's UNet layout in miniature: text-projected T5 embeddings, scale-shift norms, simple cross-attention."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=6,  # noise (3) + learned variance interpolation (3): DDPM variance_type="learned_range"
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        cross_attention_dim=32,
        encoder_hid_dim=T5_WIDTH,
        encoder_hid_dim_type="text_proj",
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
        attention_head_dim=8,
        resnet_time_scale_shift="scale_shift",
        norm_num_groups=8,
        class_embed_type="timestep" if super_resolution else None,  # stage II: the augmentation noise level
    )


def _if_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        variance_type="learned_range", beta_schedule="squaredcos_cap_v2", thresholding=True,
        dynamic_thresholding_ratio=0.95, sample_max_value=1.5, clip_sample=True,
    )


def make_tiny_if(directory: str | Path, seed: int = 0) -> Path:
    """Save a random tiny IF cascade as ``directory/stage_1`` and ``directory/stage_2``; returns ``directory``."""
    import torch
    from diffusers import DDPMScheduler, IFPipeline, IFSuperResolutionPipeline
    from transformers import T5Config, T5EncoderModel

    directory = Path(directory)
    torch.manual_seed(seed)
    tokenizer = _tiny_t5_tokenizer()
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=T5_WIDTH, d_kv=8, d_ff=40, num_layers=2, num_heads=3,
                 relative_attention_num_buckets=8)
    )
    no_safety = dict(safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)
    IFPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, unet=_if_unet(3, 8, False), scheduler=_if_scheduler(),
        **no_safety,
    ).save_pretrained(directory / "stage_1")
    IFSuperResolutionPipeline(
        tokenizer=tokenizer, text_encoder=None, unet=_if_unet(6, 32, True), scheduler=_if_scheduler(),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), **no_safety,
    ).save_pretrained(directory / "stage_2")
    return directory


def make_tiny_sdxl(directory: str | Path, seed: int = 0) -> Path:
    """Save a random tiny StableDiffusionXLPipeline (two CLIP encoders, size/time micro-conditioning)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    directory = Path(directory)
    torch.manual_seed(seed)
    tokenizer = _tiny_clip_tokenizer()

    def clip_config(**extra):
        return CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=24, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, **extra,
        )

    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=8,
        cross_attention_dim=32,  # the two encoders' hidden states side by side: 16 + 16
        addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 16,  # six size/crop numbers + the pooled text embedding
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=8, sample_size=64,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(clip_config()),
        text_encoder_2=CLIPTextModelWithProjection(clip_config(projection_dim=16)),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler, add_watermarker=False,
    ).save_pretrained(directory)
    return directory


def fake_hf_cache(cache: str | Path, repo_id: str, source: str | Path, commit: str = SNAPSHOT) -> Path:
    """Lay ``source`` out as the hub cache holds a download of ``repo_id``: content-addressed blobs, a snapshot of
    relative symlinks to them, and ``refs/main`` naming the commit. Returns the snapshot folder."""
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for file in sorted(Path(source).rglob("*")):
        if not file.is_file():
            continue
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, blob)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
