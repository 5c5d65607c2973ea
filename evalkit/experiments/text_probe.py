"""Is a relation's direction readable from the frozen text encoder's tokens, linearly or only non-linearly?

    python -m evalkit.experiments.text_probe [--train 3000] [--test 600] -> reports/imagen/text_probe.md

For toy-world relation captions ("a red circle to the left of a blue square", ...) each colour word's token is
labelled by where its object lies: on the low side (left / top) or the high side. Probes read that label from the
MiniLM token features (last layer, input embeddings, both): a linear probe, which is what the U-Net's attention
can use (keys and values are linear in the tokens), and a one-hidden-layer MLP, which is what a trainable token
refiner (`--model-opt text_refiner_layers=N`) can compute. Trained on training-split captions, scored on held-out
ones (unseen colour x shape combinations).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from evalkit.cli.args import positive_int
from evalkit.errors import EvalkitError
from evalkit.experiments.common import REPORTS_DIR, run_as_script, write_report
from evalkit.imagen.text_encoders import load_text_encoder
from evalkit.toyworld.captions import caption
from evalkit.toyworld.scenes import sample_scene

DEFAULT_STEPS = 1500
FEATURES = {"last layer": slice(0, 384), "input embeddings": slice(384, 768), "both": slice(0, 768)}


def relation_captions(split: str, n: int, seed: int):
    rng = random.Random(f"text-probe:{split}:{seed}")
    out = []
    while len(out) < n:
        scene = sample_scene(rng, split, category="Positional")
        if scene.relation:
            out.append((scene, caption(scene, rng)))
    return out


def colour_token_features(encoder, items, batch: int = 256):
    """(features [N, 768], low-side labels [N]) for the subject's and the object's colour tokens."""
    features, labels = [], []
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        tokens, _, _ = encoder._encode_batch([text for _, text in chunk])
        for row, (scene, text) in enumerate(chunk):
            words = encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer(text)["input_ids"])
            subject, other = scene.objects[0].colour, scene.objects[1].colour
            if subject not in words or other not in words:  # a colour split into word pieces: skip the caption
                continue
            subject_low = scene.relation in ("left_of", "above")
            features += [tokens[row, words.index(subject)], tokens[row, len(words) - 1 - words[::-1].index(other)]]
            labels += [subject_low, not subject_low]
    return torch.stack(features), torch.tensor(labels, dtype=torch.float32)


def probe_accuracy(x_train, y_train, x_test, y_test, hidden: int, steps: int = 1500) -> tuple[float, float]:
    """(training, held-out) accuracy of a linear (hidden=0) or one-hidden-layer probe trained with Adam."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-5
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    torch.manual_seed(0)
    width = x_train.shape[1]
    model = torch.nn.Linear(width, 1) if not hidden else torch.nn.Sequential(
        torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-4)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(model(x_train)[:, 0], y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return tuple(((model(x)[:, 0] > 0).float() == y).float().mean().item()
                     for x, y in ((x_train, y_train), (x_test, y_test)))


def report(args, encoder) -> str:
    x_train, y_train = colour_token_features(encoder, relation_captions("train", args.train, 0))
    x_test, y_test = colour_token_features(encoder, relation_captions("heldout", args.test, 1))
    if not len(y_train) or not len(y_test):
        raise EvalkitError("no relation caption kept its colour words whole; use more --train / --test captions")
    rows = []
    for name, columns in FEATURES.items():
        for hidden, probe in ((0, "linear"), (256, "MLP (256 hidden)")):
            fit, held_out = probe_accuracy(x_train[:, columns], y_train, x_test[:, columns], y_test, hidden, args.steps)
            rows.append(f"| {name} | {probe} | {fit:.3f} | {held_out:.3f} |")
    steps = "" if args.steps == DEFAULT_STEPS else f" --steps {args.steps}"
    return "\n".join([
        "# Relation direction in the frozen MiniLM tokens",
        "",
        f"`python -m evalkit.experiments.text_probe --train {args.train} --test {args.test}{steps}`: {len(y_train)} "
        f"training and {len(y_test)} held-out colour tokens; label = its object is the left/top one of the pair "
        "(chance 0.5).",
        "",
        "| features | probe | training accuracy | held-out accuracy |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.experiments.text_probe",
                                     description="Is a relation's direction linearly readable from MiniLM's tokens?")
    parser.add_argument("--train", type=positive_int, default=3000, help="training-split relation captions")
    parser.add_argument("--test", type=positive_int, default=600, help="held-out-split relation captions")
    parser.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS, help="Adam steps per probe")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "text_probe.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder = load_text_encoder({"kind": "minilm", "max_tokens": 32, "layers": [-1, 0]})
    text = report(args, encoder)
    write_report(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    run_as_script(main)
