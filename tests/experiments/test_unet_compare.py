"""Smoke test: Efficient vs plain SR U-Net for two steps writes its table and loss plot."""

import math
import re

from PIL import Image

from evalkit.experiments import unet_compare


def test_two_steps_write_report_and_plot(tmp_path):
    out = tmp_path / "compare.md"
    args = ["--steps", "2", "--batch", "2", "--eval-every", "1", "--validation", "2", "--threads", "1", "--quiet",
            "--out", str(out)]
    assert unet_compare.main(args) == 0
    text = out.read_text()
    assert "`python -m evalkit.experiments.unet_compare --steps 2 --batch 2 --threads 1`" in text
    assert "![validation loss](compare.png)" in text
    summary = dict(re.findall(r"^\| (efficient|plain) \| ([\d.]+)M \|", text, re.MULTILINE))
    # The presets of `evalkit train imagen --stage sr1 --unet efficient|plain`: 1.76M and 1.87M parameters.
    assert summary == {"efficient": "1.76", "plain": "1.87"}
    curve = re.findall(r"^\| (\d) \| (\d+) \| ([\d.]+) \| (\d+) \| ([\d.]+) \|$", text, re.MULTILINE)
    assert [int(row[0]) for row in curve] == [0, 1, 2]
    assert all(math.isfinite(float(row[2])) and float(row[2]) > 0 for row in curve)
    with Image.open(tmp_path / "compare.png") as image:
        assert image.format == "PNG" and image.size == (1100, 396)
