"""A tiny, randomly initialised Stable Diffusion pipeline saved to disk, for offline tests.

``make_tiny_pipeline(dir)`` writes a complete diffusers pipeline directory (model_index.json, unet, vae,
text_encoder, tokenizer, scheduler) that loads with ``DiffusionPipeline.from_pretrained(dir)`` and makes a
64x64 image on CPU in well under a second. The weights are random, so the images are noise, but they are
deterministic for a fixed generator seed, which is all the adapter tests need.
"""

from __future__ import annotations

import string
from pathlib import Path

SPECIAL_TOKENS = ["<|startoftext|>", "<|endoftext|>"]


def _tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over lowercase letters and digits only (anything else becomes <|endoftext|>).

    A hand-made vocab keeps the test offline; a couple of merges make sure the BPE path is exercised.
    """
    from transformers import CLIPTokenizer

    symbols = list(string.ascii_lowercase + string.digits)
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>")]
    tokens = SPECIAL_TOKENS + symbols + [s + "</w>" for s in symbols] + ["th", "the</w>", "an", "and</w>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)


def make_tiny_pipeline(directory: str | Path, seed: int = 0) -> Path:
    """Build a random tiny StableDiffusionPipeline, save it under ``directory`` and return that path."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    directory = Path(directory)
    torch.manual_seed(seed)
    tokenizer = _tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=32,  # x2 VAE downscale: the pipeline's default size is 64x64
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)
    return directory
