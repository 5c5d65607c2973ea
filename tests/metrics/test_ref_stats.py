"""`evalkit ref-stats` (COCO protocol: centre crop + resize first) and FID against the saved .npz."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from evalkit.cli import main
from evalkit.images import center_crop_resize, list_images, load_rgb
from evalkit.metrics.stats import GaussianStats


@pytest.fixture(scope="module")
def real_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(9)
    for i in range(6):
        coarse = rng.uniform(0, 255, size=(4, 5, 3))
        Image.fromarray(coarse.astype(np.uint8)).resize((80, 60), Image.BILINEAR).save(folder / f"r{i}.jpg", quality=95)
    return folder


def test_ref_stats_npz_gives_the_fid_of_the_cropped_images(tmp_path, real_images, folders, inception_weights, capsys):
    out = tmp_path / "ref.npz"
    assert main(["ref-stats", "--images", str(real_images), "--out", str(out), "--size", "32",
                 "--weights", str(inception_weights)]) == 0
    stats = GaussianStats.load(out)
    assert stats.n == 6 and stats.mu.shape == (2048,) and stats.meta["preprocessing"]["crop_size"] == 32

    # The same protocol done by hand: crop + resize, saved losslessly, then compared as a folder.
    cropped = tmp_path / "cropped"
    cropped.mkdir()
    for path in list_images(real_images):
        Image.fromarray(center_crop_resize(load_rgb(path), 32)).save(cropped / f"{path.stem}.png")
    capsys.readouterr()
    # `evalkit fid REF GENERATED`: the saved statistics are the reference side
    assert main(["fid", str(out), str(folders[0]), "--no-kid", "--weights", str(inception_weights), "--json"]) == 0
    via_npz = json.loads(capsys.readouterr().out)["metrics"]["fid"]
    assert main(["fid", str(cropped), str(folders[0]), "--weights", str(inception_weights), "--json",
                 "--kid-subset-size", "6"]) == 0
    via_folder = json.loads(capsys.readouterr().out)["metrics"]
    assert via_npz["overall"]["value"] == pytest.approx(via_folder["fid"]["overall"]["value"], rel=1e-6)
    assert via_npz["key"]["reference"]["n"] == 6 and via_npz["key"]["reference"]["kind"] == "stats"
    assert "kid" in via_folder

    # KID needs the reference images themselves: a statistics file holds only a mean and covariance, so `fid`
    # skips it with a warning and `distance --metrics kid` refuses.
    assert main(["fid", str(out), str(folders[0]), "--weights", str(inception_weights)]) == 0
    assert "KID is skipped" in capsys.readouterr().err
    assert main(["distance", str(out), str(folders[0]), "--metrics", "kid", "--weights", str(inception_weights)]) == 2
    assert "needs reference images" in capsys.readouterr().err


def test_stats_from_another_resize_mode_are_refused(tmp_path, real_images, folders, inception_weights, capsys):
    out = tmp_path / "clean.npz"
    assert main(["ref-stats", "--images", str(real_images), "--out", str(out), "--resize", "clean",
                 "--weights", str(inception_weights)]) == 0
    capsys.readouterr()
    assert main(["fid", str(out), str(folders[0]), "--no-kid", "--weights", str(inception_weights)]) == 2
    err = capsys.readouterr().err.strip()
    assert "resize=clean" in err and "refusing" in err and err.count("\n") == 0
    # the same resize mode as the statistics is accepted
    assert main(["fid", str(out), str(folders[0]), "--no-kid", "--resize", "clean",
                 "--weights", str(inception_weights)]) == 0


def test_bad_inputs_exit_2_with_one_line(tmp_path, folders, inception_weights, capsys):
    np.savez(tmp_path / "bad.npz", mu=np.zeros(3), sigma=np.zeros((2, 2)))
    assert main(["fid", str(tmp_path / "bad.npz"), str(folders[0]), "--no-kid", "--weights", str(inception_weights)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "expected mu of shape" in err
