"""evalkit.adapters.gpu: dtype names and the one-line out-of-memory message, here and in the built-in imagen adapter."""

from __future__ import annotations

import pytest
import torch

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.adapters.gpu import is_out_of_memory, out_of_memory_guard, out_of_memory_message, parse_dtype
from evalkit.errors import EvalkitError


@pytest.mark.parametrize("text, name", [
    ("fp32", "float32"), ("float32", "float32"), ("FP16", "float16"), ("half", "float16"), ("bf16", "bfloat16"),
    (" bfloat16 ", "bfloat16"),
])
def test_dtype_names(text, name):
    assert parse_dtype(AdapterOptions(extra={"dtype": text})) == name


def test_unset_and_unknown_dtypes():
    assert parse_dtype(AdapterOptions()) == "float32"
    with pytest.raises(EvalkitError, match=r"--opt text_encoder_dtype='int8' is not supported; use one of: float32"):
        parse_dtype(AdapterOptions(extra={"text_encoder_dtype": "int8"}), "text_encoder_dtype")


@pytest.mark.parametrize("error, expected", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (torch.cuda.OutOfMemoryError("CUDA out of memory."), True),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried 9 GB"), True),
    (RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"), False),
    (ValueError("out of memory"), False),
])
def test_what_counts_as_out_of_memory(error, expected):
    assert is_out_of_memory(error) is expected


def test_a_single_image_that_does_not_fit_names_other_remedies():
    assert out_of_memory_message("cuda:1", 1, 1024, 768, "StableDiffusionXLPipeline", "float32") == (
        "out of memory on cuda:1 making 1 image(s) of 768x1024 with StableDiffusionXLPipeline; even one image does "
        "not fit: try --opt dtype=float16 (or bfloat16), a smaller --size, or a device with more memory")
    assert "--opt dtype" not in out_of_memory_message("cuda", 1, 64, 64, "x", "float16")
    assert "--opt dtype" not in out_of_memory_message("cuda", 1, 64, 64, "x", None)  # the adapter has no dtype option
    assert "try --batch-size 3 " in out_of_memory_message("cuda", 7, 64, 64, "x", None)


def test_other_errors_pass_through_the_guard_unchanged():
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        with out_of_memory_guard("cpu", 2, 64, 64, "x", "float32"):
            raise RuntimeError("shapes cannot be multiplied")


def test_imagen_adapter_out_of_memory_is_one_line(monkeypatch):
    adapter = create_adapter("imagen", AdapterOptions(device="cpu", extra={"stages": "1", "steps": "2"}))

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(adapter.cascade, "generate", no_memory)
    size = adapter.default_size[0]
    with pytest.raises(EvalkitError) as caught:
        adapter.generate(GenerationBatch(["a red cube"] * 8, list(range(8)), size, size))
    assert str(caught.value) == (
        f"out of memory on cpu making 8 image(s) of {size}x{size} with the imagen cascade; try --batch-size 4 "
        "(rerunning resumes: finished images are kept)")
