"""Weight files that run code when unpickled in full: each creates ``marker`` if it is ever unpickled.

``assert_payload_is_live`` proves a payload works (a full unpickle creates the marker), so a test asserting that
evalkit left no marker cannot pass merely because the payload was inert.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch


class Payload:
    """Unpickling this creates ``marker`` (``open(marker, "w")``)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def legacy_pickle(state: dict) -> bytes:
    """A plain pickle, as torch.save wrote before its zip format (and as any ``.pkl`` is)."""
    return pickle.dumps(state, protocol=2)


def torch_zip(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _with_member(data: bytes, name: str) -> bytes:
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        root = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{root}/{name}", pickle.dumps(()))
    return buffer.getvalue()


def fake_torchscript(state: dict) -> bytes:
    """A torch.save archive plus a member whose name merely ends in constants.pkl (torch: not TorchScript)."""
    return _with_member(torch_zip(state), "xconstants.pkl")


def torchscript_lookalike(state: dict) -> bytes:
    """A torch.save archive with a constants.pkl record, so torch treats it as TorchScript, and a payload."""
    return _with_member(torch_zip(state), "constants.pkl")


FORMATS = {"legacy-pickle": legacy_pickle, "torch-zip": torch_zip, "fake-torchscript": fake_torchscript,
           "torchscript-lookalike": torchscript_lookalike}


def assert_payload_is_live(writer, key: str, tmp_path: Path) -> None:
    """A full unpickle of ``writer``'s file runs the payload (checked on the formats a full unpickle reads)."""
    marker = tmp_path / "live-check"
    path = tmp_path / "live-check.pt"
    path.write_bytes(writer({key: Payload(marker)}))
    if writer is legacy_pickle:
        pickle.loads(path.read_bytes())
    else:
        with zipfile.ZipFile(path) as archive:
            data = next(name for name in archive.namelist() if name.endswith("/data.pkl"))

            class Persistent(pickle.Unpickler):
                def persistent_load(self, pid):
                    return None

            Persistent(io.BytesIO(archive.read(data))).load()
    assert marker.exists()
    marker.unlink()
