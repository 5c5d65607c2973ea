"""Smoke test: the position probe on a tiny MiniLM-conditioned base writes its three tables."""

import re

import pytest

from evalkit.experiments import position_probe
from evalkit.imagen.cascade import ImagenCascade, Stage
from evalkit.imagen.diffusion import Schedule
from evalkit.imagen.efficient_unet import build_model
from evalkit.imagen.sampling import SamplerConfig
from evalkit.imagen.unet import UNetConfig

from ..imagen.helpers import randomize

MINILM = {"kind": "minilm", "max_tokens": 32, "dim": 384}


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A one-stage cascade at 12 px reading MiniLM's last layer (the probe needs the real tokenizer and layers)."""
    config = UNetConfig(image_size=12, dim=8, channel_mults=(1, 2), num_res_blocks=1, attn_levels=(1,),
                        text_dim=384, cond_dim=16, heads=2).to_dict()
    stage = Stage("base", randomize(build_model(config)), config, Schedule("cosine"),
                  SamplerConfig("ddim", 2, 3.0, "static"), MINILM)
    ImagenCascade([stage]).save_pretrained(tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_probe_on_a_tiny_base(tiny_checkpoint, tmp_path):
    out = tmp_path / "probe.md"
    assert position_probe.main(["--checkpoint", str(tiny_checkpoint), "--seeds", "2", "--threads", "1",
                                "--out", str(out)]) == 0
    text = out.read_text()
    assert "`python -m evalkit.experiments.position_probe --seeds 2` (checkpoint `ckpt`" in text
    hits = re.search(r"In the named third: (\d+) of (\d+)", text)
    assert hits and int(hits.group(2)) == 8 and 0 <= int(hits.group(1)) <= 8
    assert len(re.findall(r"^\| [01] \| ", text, re.MULTILINE)) == 2  # one row per seed
    redness = re.findall(r"^\| (0\.95|0\.8|0\.6) \| (.+?) \| ([+-][\d.]+) \| ([+-][\d.]+) \| ([+-][\d.]+) \|$", text,
                         re.MULTILINE)
    assert len(redness) == 3 * 5
    encoder = [line.strip("|").split("|") for line in text.splitlines() if re.match(r"^\| \w+ / \w+ \|", line)]
    assert [cells[0].strip() for cells in encoder] == ["left / right", "top / bottom", "above / below",
                                                       "two / three", "red / blue", "circle / square"]
    for cells in encoder:
        cosines = [float(c) for c in cells[1:]]
        assert len(cosines) == 7 and all(-1.0 <= c <= 1.0 for c in cosines)  # MiniLM: embeddings + 6 layers
