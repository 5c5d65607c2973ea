"""The extractor seam: discovery, settings, the one feature cache, weights lookup and --weights overrides."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.metrics import weights
from evalkit.metrics.extractors import (
    ExtractorOptions,
    available_extractors,
    create_extractor,
    extractor_weights,
    features,
)
from evalkit.images import list_images, load_rgb
from tests.metrics.conftest import TINY_CLIP, save_random_dinov2, synthetic_images

BUILT_INS = ["clip", "clip-cleanfid", "clip-cmmd", "dinov2-vitb14", "dinov2-vitl14", "inception"]


def tiny_clip(weights_path, **options):
    return create_extractor("clip", ExtractorOptions(weights=weights_path, workers=0,
                                                     settings={"model": TINY_CLIP, "pretrained": "test"}, **options))


class CountingExtractor:
    """Wraps an extractor and counts the network passes, so a test sees cache hits and misses."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.dim, self.weights_sha256 = inner.name, inner.dim, inner.weights_sha256

    def description(self):
        return self.inner.description()

    def compute(self, paths):
        self.calls += 1
        return self.inner.compute(paths)


def test_built_ins_are_registered_with_their_weights():
    assert set(BUILT_INS) <= set(available_extractors())
    assert extractor_weights("inception") == [weights.INCEPTION]
    assert extractor_weights("clip", {"model": "ViT-L-14"}) == ["clip-ViT-L-14-openai"]
    assert extractor_weights("dinov2-vitl14") == ["dinov2-vitl14"]
    for name in BUILT_INS:
        assert all(w in weights.REGISTRY for w in extractor_weights(name)), name


def test_unknown_extractor_and_bad_settings_are_clear_errors(inception_weights):
    with pytest.raises(EvalkitError, match="unknown feature extractor 'vgg'; known: clip, clip-cleanfid"):
        create_extractor("vgg", ExtractorOptions())
    with pytest.raises(EvalkitError, match=r"inception: unknown setting 'size'; settings: resize \(default tor"):
        create_extractor("inception", ExtractorOptions(weights=inception_weights, settings={"size": "299"}))
    with pytest.raises(EvalkitError, match="resize='bogus' is not one of torchmetrics, tf1, clean, pytorch-fid"):
        create_extractor("inception", ExtractorOptions(weights=inception_weights, settings={"resize": "bogus"}))
    with pytest.raises(EvalkitError, match="crop_size must be a positive number"):
        create_extractor("inception", ExtractorOptions(weights=inception_weights, settings={"crop_size": "big"}))
    with pytest.raises(EvalkitError, match="unknown setting"):
        extractor_weights("clip", {"modle": "ViT-B-32"})


def test_inception_equals_torch_fidelity(inception_weights, folders):
    """tf1 resize is torch-fidelity's own forward (uint8 in, its TF1 bilinear resize, pool3 out)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    paths = list_images(folders[0])[:2]
    ours = create_extractor("inception", ExtractorOptions(weights=inception_weights, workers=0,
                                                          settings={"resize": "tf1"}))
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                      feature_extractor_weights_path=str(inception_weights)).eval()
    with torch.no_grad():
        theirs = net(torch.stack([torch.from_numpy(load_rgb(p)).permute(2, 0, 1) for p in paths]))[0].numpy()
    assert np.allclose(ours.compute(paths), theirs, rtol=1e-4, atol=1e-4)
    description = json.loads(json.dumps(ours.description()))
    assert description["preprocessing"] == {"resize": "tf1", "crop_size": None, "input_size": 299}
    assert (description["extractor"], description["dim"], description["weights_name"]) == ("inception", 2048,
                                                                                           weights.INCEPTION)


def test_cache_hits_and_misses(tmp_path, monkeypatch, clip_weights):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    paths = list_images(synthetic_images(tmp_path / "imgs", 3, seed=4))
    extractor = CountingExtractor(tiny_clip(clip_weights))
    first = features(paths, extractor)
    assert extractor.calls == 1 and first.shape == (3, 32) and first.dtype == np.float32
    assert np.array_equal(features(paths, extractor), first) and extractor.calls == 1  # hit
    assert np.array_equal(features(paths, extractor, use_cache=False), first) and extractor.calls == 2
    features(paths[::-1], extractor)  # order is part of the key
    assert extractor.calls == 3

    Image.fromarray(np.full((48, 48, 3), 200, np.uint8)).save(paths[1])  # a changed image misses
    changed = features(paths, extractor)
    assert extractor.calls == 4 and np.array_equal(changed[0], first[0]) and not np.array_equal(changed[1], first[1])

    import open_clip

    torch.manual_seed(5)  # other weights, same architecture: a miss
    other = tmp_path / "other-clip.pt"
    torch.save(open_clip.create_model(TINY_CLIP, pretrained=None).state_dict(), other)
    reweighted = CountingExtractor(tiny_clip(other))
    assert not np.allclose(features(paths, reweighted), changed) and reweighted.calls == 1

    cmmd = CountingExtractor(create_extractor("clip-cmmd", ExtractorOptions(
        weights=clip_weights, workers=0, settings={"model": TINY_CLIP, "pretrained": "test"})))
    features(paths, cmmd)  # same network and weights, another preprocessing: a miss
    for each in (extractor, cmmd):
        json.dumps(each.description())  # JSON-able as it is
    assert cmmd.calls == 1 and len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 5


def test_preprocessing_setting_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    paths = list_images(synthetic_images(tmp_path / "imgs", 2, seed=6, size=40))
    dinov2 = save_random_dinov2(tmp_path / "dinov2_vitb14_pretrain.pth", 768, depth=1)
    runs = {}
    for resize in ("dgm-eval", "clean"):
        extractor = CountingExtractor(create_extractor("dinov2-vitb14", ExtractorOptions(
            weights=dinov2, workers=0, settings={"resize": resize})))
        runs[resize] = (features(paths, extractor), features(paths, extractor), extractor.calls)
    assert runs["dgm-eval"][2] == runs["clean"][2] == 1
    json.dumps(extractor.description())  # JSON-able as it is (metrics.json and .npz metadata store it)
    assert not np.allclose(runs["dgm-eval"][0], runs["clean"][0], atol=1e-4)


def test_damaged_or_unwritable_cache_only_costs_time(tmp_path, monkeypatch, clip_weights):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    paths = list_images(synthetic_images(tmp_path / "imgs", 2, seed=8))
    extractor = CountingExtractor(tiny_clip(clip_weights))
    good = features(paths, extractor)
    [entry] = list((tmp_path / "cache" / "features").glob("*.npy"))
    entry.write_bytes(entry.read_bytes()[:40])  # truncated
    assert np.array_equal(features(paths, extractor), good) and extractor.calls == 2
    np.save(entry, np.zeros((3, 32), np.float32))  # wrong shape for this image set
    assert np.array_equal(features(paths, extractor), good) and extractor.calls == 3
    assert np.array_equal(np.load(entry), good)  # replaced by the recomputed features

    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "blocked"))
    assert np.array_equal(features(paths, extractor), good) and extractor.calls == 4


def test_non_finite_features_name_the_image(tmp_path, clip_weights):
    extractor = tiny_clip(clip_weights)
    paths = list_images(synthetic_images(tmp_path / "imgs", 2, seed=9))
    with torch.no_grad():
        extractor.net.visual.proj.fill_(float("nan"))
    with pytest.raises(EvalkitError, match="non-finite features for .*img_000.png"):
        features(paths, extractor, use_cache=False)


def test_missing_weights_is_one_line_naming_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    for name, file_name in [("dinov2-vitl14", "dinov2_vitl14_pretrain.pth"),
                            ("clip-cmmd", "clip-ViT-L-14-336-openai.pt"),
                            ("inception", weights.spec(weights.INCEPTION).file_name)]:
        with pytest.raises(EvalkitError) as caught:
            create_extractor(name, ExtractorOptions())
        message = str(caught.value)
        assert "\n" not in message and "not found" in message
        assert str(tmp_path / "weights" / file_name) in message and "--weights" in message


def test_unpublished_hash_is_recorded_not_enforced(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(tmp_path))
    placed = tmp_path / "dinov2_vitb14_pretrain.pth"
    placed.write_bytes(b"any bytes: there is no published hash to check them against")
    assert weights.spec("dinov2-vitb14").sha256 is None
    assert weights.resolve("dinov2-vitb14") == placed
    (tmp_path / "clip-ViT-L-14-336-openai.pt").write_bytes(b"wrong")
    with pytest.raises(EvalkitError, match="expected 3035c92b3509"):  # a published hash still is enforced
        weights.resolve("clip-ViT-L-14-336-openai")


def test_weight_overrides_map_extractor_names(tmp_path):
    file = tmp_path / "w.pt"
    file.write_bytes(b"x")
    assert weights.parse_weight_overrides([f"inception-2015-12-05={file}", f"dinov2-vitb14={file}"]) == {
        "inception-2015-12-05": file, "dinov2-vitb14": file}
    # an extractor name maps to its registry weights and is kept as a key for the extractor itself
    assert weights.parse_weight_overrides([f"clip={file}"]) == {"clip-ViT-B-32-openai": file, "clip": file}
    assert weights.parse_weight_overrides([f"clip={file}"], {"clip": {"model": "ViT-L-14"}}) == {
        "clip-ViT-L-14-openai": file, "clip": file}
    assert weights.parse_weight_overrides([f"clip-cmmd={file}"]) == {"clip-ViT-L-14-336-openai": file,
                                                                     "clip-cmmd": file}
    with pytest.raises(EvalkitError, match="unknown weights or extractor 'resnet'; known: clip, clip-ViT-B-32-openai"):
        weights.parse_weight_overrides([f"resnet={file}"])
    with pytest.raises(EvalkitError, match="NAME=PATH"):
        weights.parse_weight_overrides([str(file)])
    with pytest.raises(EvalkitError, match="no such file"):
        weights.parse_weight_overrides([f"clip={tmp_path / 'absent.pt'}"])


PLUGIN = textwrap.dedent(
    '''
    import numpy as np
    from evalkit.metrics.extractors import ExtractorSpec, Setting
    from evalkit.images import load_rgb

    class MeanColour:
        name, dim, weights_sha256 = "mean-colour", 3, "none"

        def __init__(self, scale):
            self.scale = scale

        def description(self):
            return {"extractor": self.name, "weights_sha256": None, "preprocessing": {"scale": self.scale}, "dim": 3}

        def compute(self, paths):
            return np.stack([load_rgb(p).reshape(-1, 3).mean(0) * self.scale for p in paths]).astype(np.float32)

    SPEC = ExtractorSpec(name="mean-colour", summary="mean RGB", settings={"scale": Setting("1")},
                         build=lambda options, settings: MeanColour(float(settings["scale"])),
                         weights=lambda settings: [])
    '''
)


def test_third_party_extractor_enters_through_the_same_group(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    (root / "evalkit_mean_colour.py").write_text(PLUGIN)
    dist = root / "evalkit_mean_colour-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalkit-mean-colour\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalkit.extractors]\nmean-colour = evalkit_mean_colour:SPEC\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    assert "mean-colour" in available_extractors() and extractor_weights("mean-colour") == []
    paths = list_images(synthetic_images(tmp_path / "imgs", 2, seed=3))
    extractor = create_extractor("mean-colour", ExtractorOptions(settings={"scale": "2"}))
    expected = np.stack([load_rgb(p).reshape(-1, 3).mean(0) * 2 for p in paths])
    assert np.allclose(features(paths, extractor, desc="ignored by a compute without desc"), expected)
    sys.modules.pop("evalkit_mean_colour", None)
