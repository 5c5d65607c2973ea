"""evalkit.devices.resolve_device: one rule for every --device, checked against the (simulated) hardware."""

import pytest
import torch

from evalkit.devices import resolve_device
from evalkit.errors import EvalkitError


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize("name", [None, "auto", "AUTO", " auto "])
def test_auto_is_cpu_without_cuda(no_gpu, name):
    assert resolve_device(name) == "cpu"


@pytest.mark.parametrize("name", [None, "auto"])
def test_auto_is_cuda_with_cuda(two_gpus, name):
    assert resolve_device(name) == "cuda"


def test_cpu_never_asks_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("cpu must not probe CUDA"))
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_names_kept_when_present(two_gpus, name):
    assert resolve_device(name) == name


def test_cuda_index_beyond_device_count(two_gpus):
    with pytest.raises(EvalkitError, match=r"2 CUDA device\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda(no_gpu, name):
    with pytest.raises(EvalkitError, match="no CUDA device is available"):
        resolve_device(name)


def test_mps_when_available(no_gpu, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == "mps"


def test_mps_when_absent(no_gpu):
    with pytest.raises(EvalkitError, match="MPS backend is not available"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "", 3])
def test_anything_else_is_one_line_error(no_gpu, name):
    with pytest.raises(EvalkitError, match="--device must be auto, cpu, cuda, cuda:N or mps") as caught:
        resolve_device(name)
    assert "\n" not in str(caught.value)


def test_real_machine_auto_matches_torch():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_every_command_uses_the_one_rule():
    """run, train, the imagen trainer and the adapters all go through evalkit.devices (no second copy)."""
    import evalkit.adapters.diffusers as diffusers_adapter
    import evalkit.adapters.imagen as imagen_adapter
    import evalkit.cli.run_cmd as run_cmd
    import evalkit.imagen.train as train

    for module in (run_cmd, train, imagen_adapter, diffusers_adapter):
        assert module.resolve_device is resolve_device, module.__name__
