from pathlib import Path

import numpy as np
import pytest

from evalkit.adapters.base import AdapterOptions, GenerationBatch
from evalkit.adapters.imagen import DEFAULT_CHECKPOINT, create
from evalkit.errors import EvalkitError
from evalkit.imagen import cascade as cascade_module
from evalkit.imagen.cascade import native_bf16, resolve_precision

from .helpers import tiny_cascade


def test_missing_checkpoint_and_bad_options_are_clear(tmp_path):
    with pytest.raises(EvalkitError, match="base.json is missing"):
        create(AdapterOptions(model_path=str(tmp_path)))
    with pytest.raises(EvalkitError, match="does not take"):
        create(AdapterOptions(extra={"colour": "red"}))
    with pytest.raises(EvalkitError, match="sampler"):
        create(AdapterOptions(extra={"sampler": "euler"}))
    with pytest.raises(EvalkitError, match="not a valid int"):
        create(AdapterOptions(extra={"steps": "many"}))
    with pytest.raises(EvalkitError, match="precision must be one of auto, fp32, bf16, got 'fp16'"):
        create(AdapterOptions(extra={"precision": "fp16"}))


def test_adapter_on_a_saved_cascade(tmp_path):
    cascade = tiny_cascade()
    cascade.save_pretrained(tmp_path)
    # The tiny cascade's 'hash' encoder is not loadable: point the adapter at a checkpoint with a real spec.
    for name in ("base", "sr1"):
        path = tmp_path / f"{name}.json"
        path.write_text(path.read_text().replace('"kind": "hash"', '"kind": "minilm"').replace('"dim": 16', '"dim": 16'))
    adapter = create(AdapterOptions(model_path=str(tmp_path), extra={"steps": "2", "sr_steps": "2", "sr_guidance": "1",
                                                                     "precision": "fp32"}))
    adapter.cascade._text_encoder = cascade.text_encoder  # keep the test offline-cheap
    assert adapter.default_size == (16, 16)
    config = adapter.config()
    assert config["sampling"]["base"]["steps"] == 2 and config["sampling"]["sr1"]["guidance"] == 1.0
    assert config["precision"] == "fp32"
    images = adapter.generate(GenerationBatch(["a red circle", "two cats"], [1, 2], 16, 16))
    assert [im.size for im in images] == [(16, 16), (16, 16)]
    resized = adapter.generate(GenerationBatch(["a red circle"], [1], 24, 20))
    assert resized[0].size == (20, 24)
    # in fp32 an image does not depend on its batch-mates
    assert images[0].tobytes() == adapter.generate(GenerationBatch(["a red circle"], [1], 16, 16))[0].tobytes()


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "base.json").is_file(), reason="shipped checkpoint not present")
def test_shipped_checkpoint_loads_by_default():
    adapter = create(AdapterOptions(extra={"stages": "1", "steps": "2"}))
    assert adapter.default_size == (32, 32)
    assert adapter.config()["text_encoder"]["kind"] == "minilm"
    full = create(AdapterOptions())
    assert full.default_size == (128, 128) and len(full.checkpoint_hash()) == 16
    # the default precision 'auto' is recorded as what it chose, so fp32 and bf16 runs have different ids
    assert full.config()["precision"] == ("bf16" if native_bf16("cpu") else "fp32")
    # the base's high-noise expert ships with it, is named in the run config, and can be switched off
    assert full.config()["experts"] == ["base_expert"]
    without = create(AdapterOptions(extra={"expert": "false"}))
    assert "experts" not in without.config() and without.checkpoint_hash() != full.checkpoint_hash()
    with pytest.raises(EvalkitError, match="expert='maybe' is not a valid boolean"):
        create(AdapterOptions(extra={"expert": "maybe"}))


def test_precision_bf16_is_recorded_and_samples_close_to_fp32(tmp_path):
    cascade = tiny_cascade()
    cascade.save_pretrained(tmp_path)
    for name in ("base", "sr1"):
        path = tmp_path / f"{name}.json"
        path.write_text(path.read_text().replace('"kind": "hash"', '"kind": "minilm"'))
    images = {}
    for precision in ("fp32", "bf16"):
        adapter = create(AdapterOptions(model_path=str(tmp_path), extra={"steps": "3", "precision": precision}))
        adapter.cascade._text_encoder = cascade.text_encoder
        assert adapter.config()["precision"] == precision
        images[precision] = [np.asarray(im, dtype=float) for im in
                             adapter.generate(GenerationBatch(["a red circle", "two cats"], [1, 2], 16, 16))]
    for full, half in zip(images["fp32"], images["bf16"]):
        assert np.abs(full - half).mean() < 4.0  # bfloat16 keeps 8 bits of mantissa: pixels move, images do not


def test_auto_precision_is_bf16_only_where_bfloat16_is_native(monkeypatch):
    for avx512_bf16, amx, expected in ((True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")):
        monkeypatch.setattr(cascade_module.torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(cascade_module.torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert resolve_precision("auto", "cpu") == expected
        assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cuda:0") == "fp32"
    flags = open("/proc/cpuinfo").read().split() if Path("/proc/cpuinfo").is_file() else []
    monkeypatch.undo()
    if flags:  # the probe agrees with what the kernel says this CPU has
        assert native_bf16("cpu") == ("avx512_bf16" in flags or "amx_bf16" in flags or "amx_tile" in flags)


def test_expert_options_set_the_base_band_and_need_an_expert(tmp_path):
    from evalkit.imagen.cascade import Stage

    cascade = tiny_cascade()
    cascade.save_pretrained(tmp_path)
    base = cascade.stages[0]
    Stage(name="base_expert", model=base.model, model_config=base.model_config, schedule=base.schedule,
          sampling=base.sampling, text_encoder=base.text_encoder, band=(0.8, 1.0)).save(tmp_path)
    for path in tmp_path.glob("*.json"):  # a loadable encoder spec, as in the test above
        path.write_text(path.read_text().replace('"kind": "hash"', '"kind": "minilm"'))
    folder = str(tmp_path)
    adapter = create(AdapterOptions(model_path=folder, extra={"expert_guidance": "6", "expert_steps": "3", "steps": "8"}))
    sampling = adapter.config()["sampling"]["base"]
    assert (sampling["band_t"], sampling["band_guidance"], sampling["band_steps"]) == (0.8, 6.0, 3)
    assert "band_t" not in create(AdapterOptions(model_path=folder)).config()["sampling"]["base"]
    with pytest.raises(EvalkitError, match="band_steps must be in"):
        create(AdapterOptions(model_path=folder, extra={"expert_steps": "8", "steps": "8"}))
    with pytest.raises(EvalkitError, match="need the base's high-noise expert"):
        create(AdapterOptions(model_path=folder, extra={"expert_guidance": "6", "expert": "false"}))
