"""Token grounding: word masks from toy scenes, word-token alignment, the loss, recorded attention, training."""

import json

import numpy as np
import pytest
import torch

from evalkit.errors import EvalkitError
from evalkit.imagen.efficient_unet import build_model
from evalkit.imagen.grounding import (GroundingTargets, WordTarget, build_targets, grounding_loss,
                                      recorded_text_attention, word_targets)
from evalkit.imagen.layers import TextAttention
from evalkit.imagen.text_encoders import FrozenTextEncoder, minilm_path
from evalkit.imagen.train import TrainConfig, Trainer
from evalkit.imagen.unet import UNetConfig
from evalkit.toyworld.palette import COLOURS
from evalkit.toyworld.render import render_array
from evalkit.toyworld.scenes import ObjectSpec, Scene

from .helpers import TEXT_DIM


def relation_scene(shape_b: str = "square") -> tuple[Scene, str]:
    red = ObjectSpec("circle", "red", "large", (1, 0), (0.18, 0.5))
    blue = ObjectSpec(shape_b, "blue", "small", (1, 2), (0.82, 0.5))
    return Scene(objects=(red, blue), category="Positional", relation="left_of"), \
        f"a red circle to the left of a blue {shape_b}"


def test_each_once_said_word_gets_the_pixels_of_the_objects_it_names():
    scene, caption = relation_scene()
    targets = word_targets(scene, caption, 32)
    assert [caption[t.start:t.end] for t in targets] == ["red", "circle", "blue", "square"]
    image = render_array(scene, 32)
    for target in targets:
        colour = "red" if caption[target.start:target.end] in ("red", "circle") else "blue"
        assert np.array_equal(target.mask, (image == COLOURS[colour]).all(-1))  # the rendered object's pixels


def test_a_word_said_twice_is_left_out_and_sizes_only_when_the_caption_names_them():
    scene, caption = relation_scene("circle")
    assert [caption[t.start:t.end] for t in word_targets(scene, caption, 32)] == ["red", "blue"]
    counting = Scene(objects=(ObjectSpec("cross", "green", "small", (0, 0), (0.17, 0.17)),
                              ObjectSpec("cross", "green", "small", (2, 2), (0.83, 0.83))), category="Counting")
    (green, crosses) = word_targets(counting, "two green crosses", 16)
    assert green.mask.sum() == crosses.mask.sum() > 0  # a plural names the union of its objects
    assert word_targets(counting, "two small green crosses", 16)[0].start == 10  # "small": say_size is False


def test_words_align_with_their_subword_tokens_after_the_null_token():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    caption = "a small cyan triangle"
    mask = np.ones((4, 4), dtype=bool)
    words = [[WordTarget(2, 7, mask), WordTarget(8, 12, mask)]]  # "small", "cyan"
    pieces = tokenizer.convert_ids_to_tokens(tokenizer(caption)["input_ids"])
    targets = build_targets(tokenizer, [caption], words, len(pieces) + 1, 32)
    small, cyan = targets.selection[0]
    assert [pieces[i - 1] for i in small.nonzero().flatten().tolist()] == ["small"]
    assert "".join(pieces[i - 1] for i in cyan.nonzero().flatten().tolist()).replace("#", "") == "cyan"
    assert torch.allclose(targets.selection.sum(-1), torch.ones(1, 2)) and targets.valid.all()


def test_the_loss_is_the_share_of_a_words_attention_off_its_mask():
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :, :2] = 1.0  # the left half
    selection = torch.zeros(1, 1, 3)
    selection[0, 0, 1] = 1.0
    targets = GroundingTargets(selection, mask, torch.ones(1, 1, dtype=torch.bool))
    probs = torch.zeros(1, 2, 16, 3)  # [B, heads, pixels, text positions]
    left = mask.flatten()[None, None].bool()
    probs[..., 1] = torch.where(left, 0.3, 0.0)  # all of the word's attention on its object
    assert grounding_loss([probs], targets).item() == pytest.approx(0.0)
    probs[..., 1] = torch.where(left, 0.0, 0.2)  # none of it
    assert grounding_loss([probs], targets).item() == pytest.approx(1.0)
    probs[..., 1] = torch.where(left, 0.1, 0.3)  # 8 x 0.1 inside, 8 x 0.3 outside, equal in both heads
    assert grounding_loss([probs], targets).item() == pytest.approx(1 - 0.8 / 3.2)
    targets.valid[:] = False
    assert grounding_loss([probs], targets).item() == 0.0


def test_recording_attention_changes_nothing_and_keeps_the_text_probabilities():
    torch.manual_seed(0)
    layer = TextAttention(8, 6, heads=2, self_attention=True, position=True)
    torch.nn.init.normal_(layer.out.weight)
    x, context = torch.randn(2, 8, 4, 4), torch.randn(2, 5, 6)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    plain = layer(x, context, mask)
    with recorded_text_attention(torch.nn.Sequential(layer)) as maps:
        recorded = layer(x, context, mask)
    assert layer.recorded is None and len(maps) == 1
    assert torch.allclose(plain, recorded, atol=1e-5)
    probs = maps[0]
    assert probs.shape == (2, 2, 16, 5)
    assert (probs[1, :, :, 3:] == 0).all()  # masked tokens get nothing
    assert (probs.sum(-1) < 1).all()  # the rest went to the image's own keys


def small_unet() -> torch.nn.Module:
    return build_model(UNetConfig(image_size=8, dim=8, channel_mults=(1, 2), num_res_blocks=1, attn_levels=(1,),
                                  text_dim=TEXT_DIM, cond_dim=16, heads=2, text_refiner_layers=1).to_dict())


def test_the_loss_trains_the_text_path_and_attention_not_the_output_head():
    torch.manual_seed(1)
    model = small_unet()
    for block in model.text.refiner:  # leave the zero-initialised start, so gradients reach every weight
        torch.nn.init.normal_(block.attn.out_proj.weight, std=0.1)
        torch.nn.init.normal_(block.mlp[-1].weight, std=0.1)
    tokens, mask = torch.randn(2, 4, TEXT_DIM), torch.ones(2, 4, dtype=torch.bool)
    selection = torch.zeros(2, 1, 5)
    selection[:, 0, 2] = 1.0
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, 0, :, :4] = 1.0
    targets = GroundingTargets(selection, masks, torch.ones(2, 1, dtype=torch.bool))
    with recorded_text_attention(model) as maps:
        model(torch.randn(2, 3, 8, 8), torch.tensor([0.9, 0.95]), tokens, mask)
    grounding_loss(maps, targets).backward()
    assert model.text.refiner[0].mlp[0].weight.grad.abs().sum() > 0
    assert model.text.proj.weight.grad.abs().sum() > 0
    assert model.head[-1].weight.grad is None  # the loss reads attention, not the image


class TokenizedHashEncoder(FrozenTextEncoder):
    """A random vector per MiniLM token id: a real fast tokenizer for the alignment, a tiny width for speed."""

    kind = "tokenized-hash"

    def __init__(self, max_tokens: int = 16):
        from transformers import AutoTokenizer

        super().__init__(max_tokens)
        self.tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
        self.dim = TEXT_DIM
        self.table = torch.randn(self.tokenizer.vocab_size, TEXT_DIM, generator=torch.Generator().manual_seed(0))

    def _encode_batch(self, prompts):
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        mask = batch["attention_mask"].bool()
        tokens = self.table[batch["input_ids"]] * mask[..., None]
        return tokens, mask, tokens.mean(1)


def test_training_with_grounding_logs_it_and_records_its_weight(tmp_path):
    tiny = {"dim": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "attn_levels": (1,), "cond_dim": 16, "heads": 2,
            "image_size": 8}

    def config(out, **changes):
        return TrainConfig(stage="base", out=str(out), steps=2, batch_size=4, lr=1e-3, warmup_steps=1, save_every=2,
                           log_every=1, model=tiny, device="cpu", seed=3, **changes)

    trainer = Trainer(config(tmp_path / "g", grounding_weight=0.5, expert_band=0.8), text_encoder=TokenizedHashEncoder())
    trainer.run()
    rows = (tmp_path / "g/train/base_expert/loss.csv").read_text().splitlines()
    assert rows[0] == "step,loss,lr,seconds,grounding" and len(rows) == 3
    assert all(0.0 <= float(row.split(",")[4]) <= 1.0 for row in rows[1:])
    assert json.loads((tmp_path / "g/base_expert.json").read_text())["training"]["grounding_weight"] == 0.5
    plain = Trainer(config(tmp_path / "p"), text_encoder=TokenizedHashEncoder())
    assert "grounding_weight" not in plain.stage().training


def test_grounding_refuses_what_it_cannot_ground(tmp_path):
    from .helpers import HashTextEncoder

    def config(out, **changes):
        return TrainConfig(stage="base", out=str(out), steps=1, batch_size=2, device="cpu", **changes)

    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(EvalkitError, match="--grounding-weight"):
            Trainer(config(tmp_path / "a", grounding_weight=bad), text_encoder=HashTextEncoder())
    with pytest.raises(EvalkitError, match="only --data toyworld"):
        Trainer(config(tmp_path / "b", grounding_weight=0.1, data=str(tmp_path)), text_encoder=HashTextEncoder())
    trainer = Trainer(config(tmp_path / "c", grounding_weight=0.1, model={"image_size": 8, "dim": 8, "heads": 2,
                                                                           "channel_mults": (1, 2), "cond_dim": 16}),
                      text_encoder=HashTextEncoder())
    images, lowres, captions, words = trainer_batch(trainer)
    with pytest.raises(EvalkitError, match="tokenizer"):
        trainer.train_step(images, lowres, captions, words)


def trainer_batch(trainer):
    from evalkit.imagen.data import StageBatches

    return StageBatches("toyworld", 8, None, 2, grounding=True)[0]
