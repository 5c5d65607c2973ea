"""Bad inputs give one clear error or a documented conversion; weights are found in the documented order."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from evalkit.cli import metrics_cmd, weights_cmd
from evalkit.errors import EvalkitError
from evalkit.metrics import weights
from evalkit.metrics.features import InceptionExtractor
from evalkit.images import list_images, load_rgb
from evalkit.metrics.inception import RESIZE_MODES, load_network
from tests.metrics.conftest import synthetic_images


def test_image_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    gray = load_rgb(tmp_path / "gray.png")
    assert gray.shape == (9, 7, 3) and np.array_equal(gray[..., 0], gray[..., 2])

    rgba = np.dstack([rgb, np.full((9, 7), 10, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(load_rgb(tmp_path / "rgba.png"), rgb)  # alpha dropped, colour kept (as pytorch-fid)

    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    assert load_rgb(tmp_path / "cmyk.jpg").shape == (9, 7, 3)

    sixteen = (np.arange(63, dtype=np.uint16).reshape(9, 7) * 1000).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "deep.png")
    deep = load_rgb(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and deep[..., 0].max() == round(62000 / 257)  # scaled, not clipped to 255
    assert np.array_equal(deep[..., 0], np.rint(sixteen / 257).astype(np.uint8))


def test_unreadable_and_truncated_images_name_the_file(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(EvalkitError, match="text.png: unreadable"):
        load_rgb(tmp_path / "text.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(EvalkitError, match="cut.png: unreadable or truncated"):
        load_rgb(tmp_path / "cut.png")


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(EvalkitError, match="no images"):
        list_images(tmp_path / "empty")
    with pytest.raises(EvalkitError, match="not a directory"):
        list_images(tmp_path / "nope")


def test_weights_lookup_order_and_hash_check(tmp_path, monkeypatch):
    name = weights.INCEPTION
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(tmp_path / "dir"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(EvalkitError, match=f"weights {name} not found: download .* to .*dir.* or .*xdg"):
        weights.resolve(name)
    with pytest.raises(EvalkitError, match="offline"):
        weights.fetch(name)  # tests/conftest.py sets EVALKIT_OFFLINE: never a download
    cached = tmp_path / "xdg" / "evalkit" / "weights" / weights.spec(name).file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"wrong bytes")
    with pytest.raises(EvalkitError, match="expected 6726825d0af5"):
        weights.resolve(name)
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"custom network")
    assert weights.resolve(name, explicit) == explicit  # an explicit file wins and is not hash-checked
    with pytest.raises(EvalkitError, match="unknown weights"):
        weights.resolve("resnet-9000")


def test_weights_cli_list_and_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(tmp_path))
    parser = argparse.ArgumentParser()
    weights_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["weights", "list"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in weights.REGISTRY) and "missing (expected at" in out
    args = parser.parse_args(["weights", "path", "clip-ViT-L-14-openai"])
    with pytest.raises(EvalkitError, match="clip-ViT-L-14-openai.pt"):
        args.handler(args)


def test_wrong_weights_file_is_a_clear_error(tmp_path):
    import torch

    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(EvalkitError, match="not an Inception FID state dict"):
        load_network(tmp_path / "other.pth")


def test_feature_cache_reuses_one_pass_and_keys_on_resize(tmp_path, inception_weights, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    folder = synthetic_images(tmp_path / "imgs", 3, seed=5)
    files = list_images(folder)
    extractor = InceptionExtractor(inception_weights, workers=0)
    first = extractor.features(files)
    calls = []
    monkeypatch.setattr(extractor, "compute", lambda *a, **k: calls.append(1))
    assert np.array_equal(extractor.features(files), first) and not calls  # a rerun costs no network pass
    outputs = {}
    for mode in RESIZE_MODES:
        outputs[mode] = InceptionExtractor(inception_weights, resize=mode, workers=0).features(files)
    assert np.array_equal(outputs["torchmetrics"], first)
    assert len({arr.tobytes() for arr in outputs.values()}) == len(RESIZE_MODES)  # modes really differ
    assert len(list((tmp_path / "cache" / "features").glob("*.npy"))) == len(RESIZE_MODES)


def test_fid_cli_errors_are_one_line(tmp_path, inception_weights):
    parser = argparse.ArgumentParser()
    metrics_cmd.register(parser.add_subparsers())
    (tmp_path / "empty").mkdir()
    args = parser.parse_args(["fid", str(tmp_path / "empty"), str(tmp_path / "x.npz"), "--weights",
                              str(inception_weights)])
    with pytest.raises(EvalkitError, match="no images"):
        args.handler(args)
