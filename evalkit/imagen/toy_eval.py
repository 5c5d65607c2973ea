"""Toy-world accuracy of (part of) a cascade on held-out prompts: colour, count and position, as judged by
`evalkit.toyworld.analyzer`, beside an unconditional baseline (guidance 0: the same model without its text)."""

from __future__ import annotations

from dataclasses import replace

import torch

from evalkit.imagen.cascade import ImagenCascade, to_pil

QUESTIONS = ("colour", "count", "position", "shape", "binding", "all")


def toy_accuracy(cascade: ImagenCascade, n_prompts: int = 200, guidance: float | None = None, seed: int = 0,
                 batch_size: int = 100, prompt_seed: int = 0) -> dict[str, float]:
    """Fraction of held-out prompts whose image answers each question right (questions a prompt does not ask skipped).

    `prompt_seed` 0 is the reported held-out set; 1 is the validation set that settings are chosen on."""
    from evalkit.toyworld.data import heldout_prompts

    prompts = heldout_prompts(n_prompts, seed=prompt_seed)
    sampling = {s.name: (replace(s.sampling, guidance=guidance) if guidance is not None else s.sampling)
                for s in cascade.stages}
    hits = {q: [] for q in QUESTIONS}
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        images = cascade.generate([p["prompt"] for p in chunk], [seed + start + i for i in range(len(chunk))], sampling)
        for q, values in score_images(images, chunk).items():
            hits[q] += values
    out = {q: (sum(v) / len(v) if v else float("nan")) for q, v in hits.items()}
    out.update({f"n_{q}": len(v) for q, v in hits.items()})
    return out


def score_images(images: torch.Tensor, prompts: list[dict]) -> dict[str, list[bool]]:
    """Per question, the analyzer's verdict for each image whose prompt asks it (images in [-1, 1])."""
    from evalkit.toyworld.analyzer import score

    hits: dict[str, list[bool]] = {q: [] for q in QUESTIONS}
    for image, prompt in zip(to_pil(images), prompts):
        result = score(image, prompt["spec"])
        for q in QUESTIONS:
            if result.get(q) is not None:
                hits[q].append(bool(result[q]))
    return hits


def accuracy_with_baseline(cascade: ImagenCascade, n_prompts: int = 200, seed: int = 0,
                           prompt_seed: int = 0) -> dict[str, dict[str, float]]:
    with torch.no_grad():
        return {"guided": toy_accuracy(cascade, n_prompts, None, seed, prompt_seed=prompt_seed),
                "unconditional": toy_accuracy(cascade, n_prompts, 0.0, seed, prompt_seed=prompt_seed)}
