"""`evalkit train imagen`: train one stage of the built-in Imagen cascade (see evalkit/imagen/train.py)."""

from __future__ import annotations

import argparse
import json

from evalkit.cli.args import (MAX_IMAGES_PER_PROMPT, batch_size, float_range, int_range, key_value, layer_list,
                              non_negative_float, positive_float, positive_int, seed, workers)

STEPS = int_range(1, 10**9)  # a count of optimiser steps; more is a typo
STEPS_OR_ZERO = int_range(0, 10**9)


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a built-in model", description=__doc__)
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    models.required = True
    p = models.add_parser("imagen", help="one stage of the built-in Imagen cascade (32 -> 64 -> 128)",
                          description="Train one stage; rerunning the same command resumes from <out>/train/<stage>/state.pt.")
    p.add_argument("--stage", choices=["base", "sr1", "sr2"], required=True)
    p.add_argument("--data", default="toyworld",
                   help="'toyworld' (procedural, endless) or a folder of images each with a same-stem .txt caption")
    p.add_argument("--out", default="imagen-checkpoint", help="checkpoint folder (stages are added to it)")
    p.add_argument("--steps", type=STEPS, default=1000)
    p.add_argument("--batch-size", type=batch_size, default=32)
    p.add_argument("--lr", type=positive_float, default=2e-4)
    p.add_argument("--optimizer", choices=["adamw", "adafactor"], default="adamw")
    p.add_argument("--warmup-steps", type=STEPS_OR_ZERO, default=100)
    p.add_argument("--ema-decay", type=float_range(0, 1, closed_high=False), default=0.999)
    p.add_argument("--grad-clip", type=non_negative_float, default=1.0, help="gradient-norm clip (0: off)")
    p.add_argument("--cond-drop", type=float_range(0, 1), default=0.1,
                   help="fraction trained without text (for guidance)")
    p.add_argument("--aug-max", type=float_range(0, 1, closed_high=False), default=0.5,
                   help="SR stages: max noise-augmentation level in training")
    p.add_argument("--min-snr-gamma", type=non_negative_float, default=5.0, help="min-SNR loss weighting; 0 turns it off")
    p.add_argument("--loss-weighting", choices=["min-snr", "truncated-snr", "none"], default="min-snr",
                   help="weights of the eps MSE over noise levels; truncated-snr stresses the high-noise steps "
                        "where layout is decided")
    p.add_argument("--high-noise-share", type=float_range(0, 1), default=0.0,
                   help="share of each batch trained at t in [0.85, 1], where 'left' vs 'right' changes the target")
    p.add_argument("--expert-band", type=positive_float, default=None, metavar="T_MIN",
                   help="base stage: train its high-noise expert (eDiff-I), used for t in [T_MIN, 1] and saved as "
                        "base_expert beside the base; v-prediction unless --model-opt says otherwise")
    p.add_argument("--band-power", type=float_range(1, 100), default=1.0, metavar="P",
                   help="with --expert-band: t = 1 - (1 - T_MIN) * u^P, u uniform; P > 1 trains more near t = 1, "
                        "where the text alone places the objects (default 1: uniform in the band)")
    p.add_argument("--grounding-weight", type=float_range(0, 100), default=0.0, metavar="W",
                   help="toy world: add W x the token-grounding loss, which puts each colour/shape word's text "
                        "attention on its object's pixels (evalkit/imagen/grounding.py; default 0: off)")
    p.add_argument("--schedule", choices=["cosine", "linear"], default="cosine")
    p.add_argument("--text-encoder", choices=["minilm", "t5", "clip"], default="minilm")
    p.add_argument("--text-encoder-path", default=None, help="local weights (folder for minilm/t5, file for clip)")
    p.add_argument("--text-layers", type=layer_list, default=None, metavar="LAYERS",
                   help="minilm/t5: hidden states concatenated per token (0 = input embeddings, -1 = last; "
                        "e.g. last,0 keeps position and number words apart); default: last, or with --init-from "
                        "the checkpoint's")
    p.add_argument("--clip-arch", default="ViT-B-32")
    p.add_argument("--max-tokens", type=int_range(1, 4096), default=32)
    p.add_argument("--unet", choices=["efficient", "plain"], default="efficient",
                   help="SR stages: the Efficient U-Net (paper App. B.1) or a plain U-Net of about its size")
    p.add_argument("--model-opt", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="override a U-Net setting, value as JSON or a bare word (e.g. dim=64, channel_mults=[1,2,4], prediction=v)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--save-every", type=STEPS, default=500)
    p.add_argument("--log-every", type=STEPS, default=10)
    p.add_argument("--workers", type=workers, default=0, help="data-loader worker processes")
    p.add_argument("--no-resume", action="store_true", help="start over even if a training state exists")
    p.add_argument("--max-minutes", type=positive_float, default=None, help="stop and save after this much time")
    p.add_argument("--stop-at", type=STEPS, default=None,
                   help="stop and save at this step while the LR schedule still spans --steps (to split a run)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune: start from this checkpoint folder's weights for --stage, or with --expert-band "
                        "from its expert if it has one (new layers start at zero)")
    p.add_argument("--toy-mix", type=key_value, action="append", default=[], metavar="CATEGORY=WEIGHT",
                   help="toy world: category weights, repeatable (e.g. --toy-mix Positional=0.5); unnamed ones get 0")
    p.add_argument("--eval-every", type=STEPS_OR_ZERO, default=0,
                   help="base stage: toy-world accuracy at every N-th checkpoint step, generated and scored as "
                        "`evalkit run` + `evalkit score --metrics toyworld` do (0 = off); rows go to "
                        "<out>/train/base/eval-<benchmark>.csv")
    p.add_argument("--eval-prompts", type=positive_int, default=200,
                   help="prompts of the benchmark scored (a fixed subset, as `evalkit run --limit` picks)")
    p.add_argument("--eval-images-per-prompt", type=int_range(1, MAX_IMAGES_PER_PROMPT), default=1)
    p.add_argument("--eval-split", choices=["validation", "heldout"], default="validation",
                   help="benchmark the periodic eval scores: validation = toyworld-validation (for choosing "
                        "checkpoints) or heldout = toyworld (only for reporting)")
    p.set_defaults(handler=run_train)


def _model_overrides(pairs) -> dict:
    from evalkit.errors import EvalkitError

    out = {}
    for key, raw in pairs:
        try:
            value = json.loads(raw)
        except ValueError:
            if not raw.isidentifier():  # a bare word is a string (prediction=v); anything else must be JSON
                raise EvalkitError(f"--model-opt {key}={raw!r}: the value must be JSON (e.g. 64 or [1,2,4]) "
                                   f"or a word") from None
            value = raw
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def _toy_mix(pairs) -> dict | None:
    from evalkit.errors import EvalkitError
    from evalkit.toyworld.scenes import category_weights

    if not pairs:
        return None
    mix = {}
    for key, raw in pairs:
        try:
            mix[key] = float(raw)
        except ValueError:
            raise EvalkitError(f"--toy-mix {key}={raw!r}: the weight must be a number") from None
    category_weights(mix)  # validates names and values now rather than in a data-loader worker
    return mix


def run_train(args: argparse.Namespace) -> int:
    from evalkit.cli.train_eval import eval_hook
    from evalkit.imagen.train import TrainConfig, Trainer

    encoder = {"kind": args.text_encoder, "max_tokens": args.max_tokens}
    if args.text_encoder == "clip":
        encoder["arch"] = args.clip_arch
    layers = args.text_layers if args.text_layers is not None else _checkpoint_layers(args)
    if layers != [-1]:
        encoder["layers"] = layers
    config = TrainConfig(
        stage=args.stage, data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, warmup_steps=args.warmup_steps, ema_decay=args.ema_decay, grad_clip=args.grad_clip,
        cond_drop=args.cond_drop, aug_max=args.aug_max, schedule=args.schedule,
        min_snr_gamma=args.min_snr_gamma or None, loss_weighting=args.loss_weighting,
        high_noise_share=args.high_noise_share, expert_band=args.expert_band, band_power=args.band_power,
        grounding_weight=args.grounding_weight,
        text_encoder=encoder, text_encoder_path=args.text_encoder_path,
        model=_model_overrides(args.model_opt), device=args.device, seed=args.seed, save_every=args.save_every,
        log_every=args.log_every, workers=args.workers, resume=not args.no_resume, max_minutes=args.max_minutes,
        stop_at=args.stop_at, init_from=args.init_from, toy_mix=_toy_mix(args.toy_mix), unet=args.unet,
    )
    # an expert is scored inside its base: find that now rather than at the first evaluation
    base_folder = _base_for_expert(args) if args.expert_band is not None and args.eval_every else None
    trainer = Trainer(config)
    hook = eval_hook(args, base_folder) if args.eval_every and args.stage == "base" else None
    result = trainer.run(on_checkpoint=hook)
    print(json.dumps({"stage": args.stage, "out": args.out, **result}))
    return 0


def _checkpoint_layers(args: argparse.Namespace) -> list[int]:
    """Encoder layers of the --init-from checkpoint's stage (so fine-tuning it needs no --text-layers), else last."""
    if not args.init_from:
        return [-1]
    from evalkit.imagen.cascade import read_stage_metadata

    spec = read_stage_metadata(args.init_from, args.stage).get("text_encoder", {})
    return list(spec.get("layers", [-1])) if spec.get("kind", "minilm") == args.text_encoder else [-1]


def _base_for_expert(args):
    """The folder holding the base an expert being trained is scored with: --out, else --init-from."""
    from pathlib import Path

    from evalkit.errors import EvalkitError

    for folder in (args.out, args.init_from):
        if folder and (Path(folder) / "base.json").is_file():
            return Path(folder)
    raise EvalkitError("--eval-every with --expert-band: no base stage in --out or --init-from to pair the expert with")
