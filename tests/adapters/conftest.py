"""Shared by the pipeline adapter tests (diffusers, Stable Diffusion, DeepFloyd IF)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: on a shared 2-core machine a second thread only busy-waits (measured 0.2 s vs 8 s/image)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
