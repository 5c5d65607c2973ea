"""Training one cascade stage: AdamW or Adafactor, warmup + cosine decay, EMA, gradient clipping,
conditioning dropout for classifier-free guidance, atomic checkpoints with resume, tqdm and a CSV loss log.

Output folder layout (a cascade checkpoint folder, see cascade.py):
  <out>/<stage>.json, <out>/<stage>.safetensors     EMA weights, what sampling loads
  <out>/train/<stage>/state.pt                         full training state for --resume
  <out>/train/<stage>/loss.csv                         step, loss, lr, seconds (+ grounding with --grounding-weight)
A noise-level expert (`expert_band`, experts.py) is saved as the stage `<stage>_expert` in the same layout.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from evalkit import atomic
from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError
from evalkit.imagen.cascade import EXPERT_SUFFIX, STAGE_NAMES, Stage, read_stage_metadata
from evalkit.imagen.data import StageBatches, collate
from evalkit.imagen.diffusion import HIGH_NOISE_BAND, LOSS_WEIGHTINGS, Schedule, augment_lowres, diffusion_loss
from evalkit.imagen.efficient_unet import build_model
from evalkit.imagen.grounding import build_targets, grounding_loss, recorded_text_attention
from evalkit.imagen.presets import default_sampling, model_config
from evalkit.imagen.text_encoders import load_text_encoder


@dataclass
class TrainConfig:
    stage: str = "base"
    data: str = "toyworld"
    out: str = "imagen-checkpoint"
    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    optimizer: str = "adamw"  # adamw | adafactor
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    cond_drop: float = 0.1  # fraction of samples trained unconditionally (for guidance)
    aug_max: float = 0.5  # SR stages: augmentation level ~ U(0, aug_max) during training
    schedule: str = "cosine"
    min_snr_gamma: float | None = 5.0
    loss_weighting: str = "min-snr"  # min-snr | truncated-snr | none (see diffusion.loss_weights)
    high_noise_share: float = 0.0  # share of each batch with t in diffusion.HIGH_NOISE_BAND (sample_times)
    expert_band: float | None = None  # train the base's high-noise expert for t in [expert_band, 1] (experts.py)
    band_power: float = 1.0  # an expert's t inside its band: 1 uniform, > 1 nearer t = 1 (diffusion.sample_times)
    grounding_weight: float = 0.0  # toy world: + w * the token-grounding loss on text attention (grounding.py)
    text_encoder: dict = field(default_factory=lambda: {"kind": "minilm", "max_tokens": 32})
    text_encoder_path: str | None = None
    model: dict = field(default_factory=dict)  # overrides of the preset U-Net config
    device: str = "auto"
    seed: int = 0
    save_every: int = 500
    log_every: int = 10
    workers: int = 0
    resume: bool = True
    mixed_precision: bool = True  # bf16 autocast on CUDA only
    max_minutes: float | None = None  # stop (and save) after this much wall time
    stop_at: int | None = None  # stop (and save) at this step; the LR schedule still spans `steps`
    init_from: str | None = None  # fine-tune: start from this checkpoint folder's weights for the stage
    toy_mix: dict | None = None  # toy world only: {category: weight}; None = the default mix
    unet: str = "efficient"  # SR stages: efficient (App. B.1) or plain (the baseline it is compared with)


def lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    if config.optimizer == "adafactor":
        return torch.optim.Adafactor(params, lr=config.lr, weight_decay=config.weight_decay)
    raise EvalkitError(f"--optimizer {config.optimizer!r}: choose adamw or adafactor")


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    decay = min(decay, (1 + step) / (10 + step))  # short warm-up so early EMA is not dominated by the init
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


def drop_condition(tokens, mask, rate: float, generator: torch.Generator):
    """Zero the text of a random `rate` fraction of the batch (what sampling's unconditional branch sees)."""
    keep = torch.rand(tokens.shape[0], generator=generator) >= rate
    keep = keep.to(tokens.device)
    return tokens * keep[:, None, None], mask & keep[:, None]


def load_initial_weights(model: torch.nn.Module, folder: Path, stage: str) -> dict:
    """Copy a checkpoint's weights for `stage` into `model` (fine-tuning). Layers the checkpoint lacks keep
    their initialisation (new layers are zero-initialised, so the model starts as the checkpoint); any other
    mismatch is an error. Returns what was loaded, for the record."""
    source = Stage.load(folder, stage, device="cpu", experts=False)
    theirs, ours = source.model.state_dict(), model.state_dict()
    unexpected = sorted(set(theirs) - set(ours))
    mismatched = sorted(k for k in set(theirs) & set(ours) if theirs[k].shape != ours[k].shape)
    if unexpected or mismatched:
        first = (unexpected or mismatched)[0]
        raise EvalkitError(f"--init-from {folder}: its {stage} U-Net does not fit this one ({first}); "
                           f"use the same model settings plus new layers only")
    model.load_state_dict(theirs, strict=False)
    new = sorted(set(ours) - set(theirs))
    return {"folder": str(folder), "steps": source.training.get("steps"), "new_layers": sorted({k.rsplit(".", 1)[0] for k in new})}


def init_source(folder: str, name: str, stage: str) -> str:
    """Which of `folder`'s stages a fine-tune of `name` starts from: an expert continues the folder's expert when it
    has one (`base_expert`), else starts from the stage itself (`base`)."""
    return name if (Path(folder) / f"{name}.json").is_file() else stage


class Trainer:
    def __init__(self, config: TrainConfig, text_encoder=None):
        """`text_encoder` overrides the one `config.text_encoder` names (tests pass a tiny one)."""
        if config.stage not in STAGE_NAMES:
            raise EvalkitError(f"--stage {config.stage!r}: choose {', '.join(STAGE_NAMES)}")
        self.config = config
        if config.loss_weighting not in LOSS_WEIGHTINGS:
            raise EvalkitError(f"--loss-weighting {config.loss_weighting!r}: choose {', '.join(LOSS_WEIGHTINGS)}")
        if not 0.0 <= config.high_noise_share <= 1.0:
            raise EvalkitError(f"--high-noise-share {config.high_noise_share}: must be in [0, 1]")
        if config.expert_band is not None:
            if config.stage != "base":
                raise EvalkitError(f"--expert-band: only the base stage has a high-noise expert, not {config.stage}")
            if not 0.0 < config.expert_band < 1.0:
                raise EvalkitError(f"--expert-band {config.expert_band}: the band [T_MIN, 1] needs T_MIN in (0, 1)")
            if config.high_noise_share:
                raise EvalkitError("--expert-band trains on its band only; drop --high-noise-share")
        if not config.band_power >= 1.0:
            raise EvalkitError(f"--band-power {config.band_power}: must be >= 1 (1 draws t uniformly in the band)")
        if config.band_power != 1.0 and config.expert_band is None:
            raise EvalkitError("--band-power shapes t inside an expert's band; it needs --expert-band")
        if not (math.isfinite(config.grounding_weight) and config.grounding_weight >= 0.0):
            raise EvalkitError(f"--grounding-weight {config.grounding_weight}: must be a finite number >= 0")
        if config.grounding_weight and config.data != "toyworld":
            raise EvalkitError(f"--grounding-weight needs object masks: only --data toyworld has them, not {config.data}")
        self.name = config.stage + (EXPERT_SUFFIX if config.expert_band is not None else "")
        self.init_stage = init_source(config.init_from, self.name, config.stage) if config.init_from else None
        # an expert defaults to v: from eps, x0 near t = 1 is ill-conditioned (diffusion.predicted_x0)
        self.expert_defaults = {"prediction": "v"} if config.expert_band is not None else {}
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.text_encoder = text_encoder or load_text_encoder(config.text_encoder, self.device, config.text_encoder_path)
        self.text_spec = dict(config.text_encoder, dim=self.text_encoder.dim) if text_encoder is None else text_encoder.spec()
        main_dim = int(getattr(self.text_encoder, "width", self.text_encoder.dim))  # first layer's features
        try:
            if config.init_from:  # fine-tuning keeps the checkpoint's architecture unless --model-opt changes it
                self.model_config = self._fine_tune_config(main_dim)
            else:
                extra = {"extra_text_dim": self.text_encoder.dim - main_dim} if self.text_encoder.dim > main_dim else {}
                self.model_config = model_config(config.stage, main_dim, config.unet,
                                                 **{**extra, **self.expert_defaults, **config.model})
            self.model = build_model(self.model_config).to(self.device)
        except (ValueError, TypeError) as error:
            raise EvalkitError(f"bad model settings: {error}") from None
        self.out = Path(config.out)
        self.train_dir = self.out / "train" / self.name
        self.state_path = self.train_dir / "state.pt"
        self.log_path = self.train_dir / "loss.csv"
        self.init_from = None
        if config.init_from and not (config.resume and self.state_path.is_file()):
            self.init_from = load_initial_weights(self.model, Path(config.init_from), self.init_stage)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.schedule = Schedule(config.schedule)
        self.optimizer = make_optimizer(self.model.parameters(), config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, config))
        self.step = 0
        self.last_grounding: float | None = None
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        if config.resume and self.state_path.is_file():
            self._load_state()

    def _fine_tune_config(self, main_dim: int) -> dict:
        """The --init-from checkpoint's U-Net config plus --model-opt; early encoder layers it lacks become a new
        (zero-initialised) text branch."""
        meta = read_stage_metadata(Path(self.config.init_from), self.init_stage)
        theirs = meta.get("text_encoder", {})
        if theirs.get("kind", "minilm") != self.text_spec.get("kind") or int(meta["model"]["text_dim"]) != main_dim:
            raise EvalkitError(f"--init-from {self.config.init_from}: its {self.init_stage} stage was trained with "
                               f"another text encoder ({theirs.get('kind')}, {meta['model']['text_dim']} features)")
        defaults = {} if self.init_stage == self.name else self.expert_defaults  # an expert keeps what it predicts
        return {**meta["model"], "extra_text_dim": self.text_encoder.dim - main_dim, **defaults, **self.config.model}

    # --- checkpoints -------------------------------------------------------------------------------------
    def _load_state(self) -> None:
        try:  # weights_only: the state holds tensors, numbers and plain containers; nothing else is unpickled
            state = torch.load(self.state_path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.generator.set_state(state["generator"].cpu())  # map_location moved it to the device
            self.step = int(state["step"])
        except pickle.UnpicklingError:
            raise EvalkitError(f"cannot resume from {self.state_path}: it holds pickled objects other than tensors "
                               "and plain containers, so it was not unpickled (delete it, or pass --no-resume)") from None
        except (RuntimeError, KeyError, EOFError, ValueError, TypeError, AttributeError) as error:
            lines = str(error).strip().splitlines() or [type(error).__name__]
            raise EvalkitError(f"cannot resume from {self.state_path}: {lines[0][:200]}") from None

    def save(self) -> None:
        buffer = io.BytesIO()
        torch.save({"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                    "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "generator": self.generator.get_state(), "step": self.step, "config": asdict(self.config)}, buffer)
        atomic.write_bytes(self.state_path, buffer.getvalue())
        self.stage().save(self.out)

    def stage(self) -> Stage:
        """The EMA model as a cascade stage (what gets saved for sampling)."""
        training = {"steps": self.step, "batch_size": self.config.batch_size, "lr": self.config.lr,
                    "optimizer": self.config.optimizer, "ema_decay": self.config.ema_decay, "data": self.config.data,
                    "cond_drop": self.config.cond_drop, "aug_max": self.config.aug_max,
                    "min_snr_gamma": self.config.min_snr_gamma, "seed": self.config.seed}
        if self.config.loss_weighting != "min-snr":
            training["loss_weighting"] = self.config.loss_weighting
        if self.config.high_noise_share:
            training["high_noise_share"] = self.config.high_noise_share
        if self.config.band_power != 1.0:
            training["band_power"] = self.config.band_power
        if self.config.grounding_weight:
            training["grounding_weight"] = self.config.grounding_weight
        if self.config.init_from:
            training["init_from"] = self.init_from or self.config.init_from
        if self.config.toy_mix:
            training["toy_mix"] = self.config.toy_mix
        return Stage(self.name, self.ema, self.model_config, self.schedule, default_sampling(self.config.stage),
                     self.text_spec, training, self.band)

    @property
    def band(self) -> tuple[float, float] | None:
        return None if self.config.expert_band is None else (float(self.config.expert_band), 1.0)

    # --- the loop ----------------------------------------------------------------------------------------
    def train_step(self, images, lowres, captions, words=None) -> float:
        """One optimizer step; `words` (grounding.word_targets per caption) adds the grounding loss when
        `grounding_weight` > 0. Returns the diffusion loss (the grounding loss goes to `last_grounding`)."""
        config = self.config
        text = self.text_encoder.encode(captions).to(self.device)
        tokens, mask = drop_condition(text.tokens, text.mask, config.cond_drop, self.generator)
        targets = None
        if config.grounding_weight and words is not None:
            tokenizer = getattr(self.text_encoder, "tokenizer", None)
            if tokenizer is None:
                raise EvalkitError(f"--grounding-weight needs a text encoder with a tokenizer, not {self.text_encoder.kind}")
            targets = build_targets(tokenizer, captions, words, mask.shape[1] + 1, self.text_encoder.max_tokens)
            targets.valid &= mask.any(1).cpu()[:, None]  # rows whose text was dropped have nothing to ground
            targets = targets.to(self.device)
        images = images.to(self.device, non_blocking=True)
        aug = None
        if lowres is not None:
            lowres = lowres.to(self.device, non_blocking=True)
            aug = torch.rand(images.shape[0], generator=self.generator).to(self.device) * config.aug_max
            noise = torch.randn(lowres.shape, generator=self.generator).to(self.device)
            lowres = augment_lowres(self.schedule, lowres, aug, noise)
        self.model.train()
        use_amp = config.mixed_precision and self.device.startswith("cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            share, band = (1.0, self.band) if self.band else (config.high_noise_share, HIGH_NOISE_BAND)
            with recorded_text_attention(self.model) if targets is not None else nullcontext([]) as maps:
                loss = diffusion_loss(self.model, self.schedule, images, tokens, mask, lowres, aug,
                                      config.min_snr_gamma, weighting=config.loss_weighting, high_noise_share=share,
                                      band=band, band_power=config.band_power)
            grounding = grounding_loss(maps, targets) if targets is not None else None
        self.last_grounding = None if grounding is None else float(grounding.detach())
        self.optimizer.zero_grad(set_to_none=True)
        (loss if grounding is None else loss + config.grounding_weight * grounding).backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        update_ema(self.ema, self.model, config.ema_decay, self.step)
        self.step += 1
        return float(loss.detach())

    def run(self, on_checkpoint=None) -> dict:
        """Train until `steps` (or `max_minutes`); `on_checkpoint(trainer)` runs after each save."""
        config = self.config
        size = int(self.model_config["image_size"])
        lowres_size = self.model_config.get("lowres_size")
        dataset = StageBatches(config.data, size, lowres_size, config.batch_size, config.seed, config.toy_mix,
                               grounding=bool(config.grounding_weight))
        end = min(config.steps, config.stop_at or config.steps)
        sampler = range(self.step, end)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=sampler, collate_fn=collate,
                                             num_workers=config.workers, pin_memory=self.device.startswith("cuda"),
                                             persistent_workers=False, prefetch_factor=4 if config.workers else None)
        start, losses, groundings, first_loss = time.time(), [], [], None
        log_exists = self.log_path.is_file()
        self.train_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a", encoding="utf-8")
        if not log_exists:
            log.write("step,loss,lr,seconds" + (",grounding" if config.grounding_weight else "") + "\n")
        bar = tqdm(total=config.steps, initial=self.step, desc=f"train {self.name}", unit="step")
        try:
            for images, lowres, captions, words in loader:
                loss = self.train_step(images, lowres, captions, words)
                first_loss = loss if first_loss is None else first_loss
                losses.append(loss)
                if self.last_grounding is not None:
                    groundings.append(self.last_grounding)
                bar.update(1)
                if self.step % config.log_every == 0:
                    mean = sum(losses[-config.log_every:]) / len(losses[-config.log_every:])
                    row = f"{self.step},{mean:.5f},{self.scheduler.get_last_lr()[0]:.3e},{time.time() - start:.1f}"
                    postfix = {"loss": f"{mean:.4f}"}
                    if config.grounding_weight:
                        recent = groundings[-config.log_every:]
                        grounding = sum(recent) / max(1, len(recent))
                        row, postfix["grounding"] = row + f",{grounding:.5f}", f"{grounding:.4f}"
                    log.write(row + "\n")
                    log.flush()
                    bar.set_postfix(**postfix)
                out_of_time = config.max_minutes is not None and time.time() - start > 60 * config.max_minutes
                if self.step % config.save_every == 0 or self.step == end or out_of_time:
                    self.save()
                    if on_checkpoint is not None:
                        on_checkpoint(self)
                if out_of_time:
                    break
        finally:
            bar.close()
            log.close()
        if self.step and (not (self.out / f"{self.name}.json").is_file() or self.step % config.save_every):
            self.save()
        return {"step": self.step, "seconds": time.time() - start, "first_loss": first_loss,
                "last_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else None}
