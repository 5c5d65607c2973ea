"""Smoke test: the findings driver makes each row with the evalkit CLI (run, score, compare, report) on a tiny
cascade and writes its tables, paired comparisons and report."""

import json

import pytest

from evalkit.errors import EvalkitError
from evalkit.experiments import paper_findings

from .toyworld_helpers import tiny_minilm_checkpoint


def test_the_threshold_and_sr_sweeps_on_a_tiny_cascade(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    checkpoint = tiny_minilm_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "out"
    common = ["--benchmark", "toyworld-validation", "--prompts", "3", "--images-per-prompt", "2", "--bootstrap", "50",
              "--fd-bootstrap", "20", "--kid-bootstrap", "5", "--model-path", str(checkpoint), "--runs",
              str(tmp_path / "runs"), "--out", str(out)]
    # one sweep at a time, as a long study is run: the second call keeps the first one's section and rows
    assert paper_findings.main([*common, "--only", "sr_aug"]) == 0
    assert paper_findings.main([*common, "--only", "threshold"]) == 0
    text = (out / "findings.md").read_text()
    assert text.index("## Thresholding at w = 8") < text.index("## SR noise-conditioning augmentation")
    assert "--only sr_aug" in text and "--only threshold" in text  # each section names its own command
    records = json.loads((out / "findings.json").read_text())["rows"]
    assert [r["setting"] for r in records] == ["none", "static", "dynamic", "aug 0", "aug 0.1", "aug 0.3"]
    for record in records:
        assert 0.0 <= record["stats"]["all"]["value"] <= 1.0 and record["stats"]["fd"]["value"] >= 0.0
        # every row but the reference carries its paired comparison with the reference
        assert bool(record["paired_vs_reference"]) == (record["setting"] not in ("static", "aug 0"))
    threshold_run = next(r["run"] for r in records if r["setting"] == "dynamic")
    manifest = json.loads((tmp_path / "runs" / threshold_run / "manifest.json").read_text())
    assert manifest["adapter"]["config"]["sampling"]["base"]["guidance"] == 8.0
    assert manifest["adapter"]["config"]["precision"] == "bf16"  # every row in the driver's --precision
    assert (out / "report" / "threshold" / "report.html").is_file()
    assert (out / "report" / "sr_aug" / "report.html").is_file()


def test_a_findings_file_it_did_not_write_is_refused_not_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.json").write_text('{"rows": []}')
    with pytest.raises(EvalkitError, match="not a findings file this driver wrote"):
        paper_findings.main(["--only", "threshold", "--out", str(out), "--runs", str(tmp_path / "runs")])
    assert (out / "findings.json").read_text() == '{"rows": []}'


def test_an_unknown_sweep_is_a_clear_error(tmp_path):
    with pytest.raises(EvalkitError, match="unknown sweep 'fid'"):
        paper_findings.main(["--only", "fid", "--out", str(tmp_path)])


@pytest.mark.parametrize("options", [{"sampler": "ddpm", "steps": 250}, {"steps": 16}, {"steps": 10},
                                     {"guidance": 1}, {"guidance": 8, "guidance_min_t": 0.0}])
def test_the_passes_column_counts_what_the_sampler_calls(options):
    """U-Net passes per image in the sweep tables, against the images a counting model sees in the real sampler."""
    from types import SimpleNamespace

    import torch

    from evalkit.imagen.diffusion import Schedule
    from evalkit.imagen.sampling import SamplerConfig, sample

    seen = []

    def model(x, t, tokens, mask, lowres=None, aug_level=None):
        seen.append(x.shape[0])
        return torch.zeros_like(x)

    model.config = SimpleNamespace(prediction="eps")
    defaults = {"steps": 16, "guidance": 3.0, "guidance_min_t": 0.5}
    settings = {**defaults, **options}
    tokens, mask = torch.ones(1, 1, 4), torch.ones(1, 1, dtype=torch.bool)
    sample(model, Schedule("cosine"), tokens, mask, [torch.Generator().manual_seed(0)], 4,
           SamplerConfig(sampler=settings.get("sampler", "dpm++2m"), steps=settings["steps"],
                         guidance=float(settings["guidance"]), threshold="static",
                         guidance_min_t=settings["guidance_min_t"]))
    assert paper_findings.Row("row", options).network_evaluations(defaults) == sum(seen)
