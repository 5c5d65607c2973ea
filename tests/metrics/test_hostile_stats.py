"""Hostile statistics files (.npz) through the real CLI (``evalkit distance STATS IMAGES --metrics fd`` with the
pixels extractor, 768-d): each is refused (exit 2, one line naming the file) or gives a finite distance; plus
property tests (hypothesis) of random files through the CLI and of the PSD decision against a full eigensolve.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from evalkit.metrics.stats_file import PSD_TOL, BadStatsFile, read_stats_file
from tests.hostile_cli import assert_refused, cli, json_value
from tests.hostile_payloads import Payload

DIM = 768  # the pixels extractor's default: 16 x 16 x 3


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def compressed(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def gaussian(d: int = DIM, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).random((max(3 * d // 2, 4), d))
    return x.mean(0), np.cov(x, rowvar=False)


def npy_header_only(shape: tuple, descr: str = "<f8") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64


def zip_of(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


MU, SIGMA = gaussian()
META = np.array(json.dumps({"extractor": "pixels"}))
GOOD = npz(mu=MU, sigma=SIGMA, n=np.int64(DIM * 3 // 2), meta=META)


def _with_smallest_eigenvalue(ratio: float) -> np.ndarray:
    """SIGMA shifted so that its smallest eigenvalue is ``ratio`` x its largest (about)."""
    values = np.linalg.eigvalsh(SIGMA)
    return SIGMA + (ratio * values[-1] - values[0]) * np.eye(DIM)


def _asymmetric() -> np.ndarray:
    sigma = SIGMA.copy()
    sigma[0, 1] += 1.0
    return sigma


REFUSED = {  # name -> (file bytes, fragment of the one error line)
    "text": (b"mu,sigma\n1,2\n", "not a readable .npz"),
    "zero-byte": (b"", "not a readable .npz"),
    "npy-renamed": (npy(MU), "not a readable .npz"),
    "pickle-renamed": (pickle.dumps({"mu": MU, "sigma": SIGMA}), "not a readable .npz"),
    "truncated": (GOOD[: len(GOOD) // 2], "truncated"),
    "wrong-keys": (npz(m=MU, s=SIGMA), "no 'mu' and 'sigma' arrays (found: m, s)"),
    "no-sigma": (npz(mu=MU), "no 'mu' and 'sigma' arrays"),
    "mu-2d": (npz(mu=MU[None], sigma=SIGMA), "got (1, 768) and (768, 768)"),
    "sigma-not-square": (npz(mu=MU, sigma=SIGMA[:, :-1]), "got (768,) and (768, 767)"),
    "dims-mismatched": (npz(mu=MU, sigma=SIGMA[:700, :700]), "got (768,) and (700, 700)"),
    "zero-dim": (npz(mu=np.zeros(0), sigma=np.zeros((0, 0))), "d = 0 dimensions"),
    "huge-header": (zip_of(mu=npy_header_only((100_000,)), sigma=npy_header_only((100_000, 100_000))),
                    "d = 100000 dimensions, expected 1 to 16384"),
    "nan": (npz(mu=MU, sigma=np.where(np.eye(DIM) > 0, np.nan, SIGMA)), "sigma contains NaN or infinite"),
    "inf": (npz(mu=np.full(DIM, np.inf), sigma=SIGMA), "mu contains NaN or infinite"),
    "huge-values": (npz(mu=MU * 1e200, sigma=SIGMA), "over 1e+150"),
    "not-symmetric": (npz(mu=MU, sigma=_asymmetric()), "sigma is not symmetric"),
    "not-psd": (npz(mu=MU, sigma=_with_smallest_eigenvalue(-0.5)), "not positive semi-definite: smallest eigenvalue"),
    "just-not-psd": (npz(mu=MU, sigma=_with_smallest_eigenvalue(-1e-5)), "below the tolerance of -1e-06"),
    "negative-definite": (npz(mu=MU, sigma=-SIGMA - np.eye(DIM)), "its largest eigenvalue is -"),
    "object-array": (npz(mu=np.array([MU], dtype=object), sigma=SIGMA), "mu is an object array"),
    "complex": (npz(mu=MU + 1j, sigma=SIGMA), "mu has dtype complex128"),
    "strings": (npz(mu=MU.astype(str), sigma=SIGMA), "mu has dtype <U"),
    "bool": (npz(mu=MU > 0.5, sigma=SIGMA), "mu has dtype bool"),
    "int": (npz(mu=(MU * 100).astype(np.int64), sigma=(SIGMA * 1000).astype(np.int64)), "mu has dtype int64"),
    "meta-not-json": (npz(mu=MU, sigma=SIGMA, meta=np.array("{not json")), "meta is not JSON"),
    "meta-a-list": (npz(mu=MU, sigma=SIGMA, meta=np.array("[1, 2]")), "meta is a JSON list"),
    "meta-preprocessing-a-string": (npz(mu=MU, sigma=SIGMA, meta=np.array('{"preprocessing": "x"}')),
                                    "preprocessing is not an object"),
    "meta-dim-disagrees": (npz(mu=MU, sigma=SIGMA, meta=np.array('{"dim": 2048}')), "meta says dim 2048"),
    "meta-an-array": (npz(mu=MU, sigma=SIGMA, meta=np.zeros(3)), "meta has dtype float64"),
    "n-array": (npz(mu=MU, sigma=SIGMA, n=np.arange(5)), "n has dtype int64 and shape (5,)"),
    "n-float": (npz(mu=MU, sigma=SIGMA, n=np.float64(3.5)), "n has dtype float64"),
    "n-one": (npz(mu=MU, sigma=SIGMA, n=np.int64(1)), "n = 1 images"),
    "other-extractor": (npz(mu=MU, sigma=SIGMA, meta=np.array('{"extractor": "inception", "dim": 768}')),
                        "computed with extractor=inception"),
    "other-dimension": (npz(mu=np.zeros(2048), sigma=np.eye(2048)), "holds 2048-d statistics, pixels features"),
}

VALID = {  # name -> file bytes; all describe the same Gaussian (MU, SIGMA) except the zero covariance
    "evalkit": GOOD,
    "pytorch-fid": npz(mu=MU, sigma=SIGMA),
    "float32": npz(mu=MU.astype(np.float32), sigma=SIGMA.astype(np.float32)),
    "extra-keys": npz(mu=MU, sigma=SIGMA, features=np.zeros((3, 3)), n=np.int64(-1)),
    "fortran-order": npz(mu=MU, sigma=np.asfortranarray(SIGMA)),
    "compressed": compressed(mu=MU, sigma=SIGMA),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"g{i}.png")
    return folder


def distance_argv(stats: Path, images: Path) -> list:
    return ["distance", stats, images, "--metrics", "fd", "--opt", "fd.extractor=pixels", "--no-cache",
            "--workers", "0"]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_statistics_file_is_refused(tmp_path, capsys, images, name):
    data, fragment = REFUSED[name]
    path = tmp_path / f"{name}.npz"
    path.write_bytes(data)
    assert_refused(capsys, distance_argv(path, images), path, fragment)


def test_valid_statistics_files_give_the_same_distance(tmp_path, capsys, images):
    values = {}
    for name, data in VALID.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        values[name] = json_value(capsys, distance_argv(path, images), "fd")
    assert all(v == pytest.approx(values["evalkit"], rel=1e-6) for v in values.values()), values
    path = tmp_path / "zero.npz"
    path.write_bytes(npz(mu=MU, sigma=np.zeros((DIM, DIM))))  # identical features: a valid, degenerate Gaussian
    assert json_value(capsys, distance_argv(path, images), "fd") > 0


def test_an_object_array_carrying_code_is_refused_without_running_it(tmp_path, capsys, images):
    marker = tmp_path / "unpickled"
    path = tmp_path / "payload.npz"
    path.write_bytes(npz(mu=np.array([Payload(marker)], dtype=object), sigma=SIGMA))
    with np.load(path, allow_pickle=True) as data:  # the payload is real: a full unpickle runs it
        data["mu"]
    assert marker.exists()
    marker.unlink()
    assert_refused(capsys, distance_argv(path, images), path, "object array", "never unpickled")
    assert not marker.exists()


def test_the_tolerance_accepts_float32_and_refuses_float16_storage_of_a_rank_deficient_covariance(tmp_path):
    x = np.random.default_rng(4).standard_normal((50, 120))
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)  # rank 49 of 120
    for dtype, accepted in ((np.float64, True), (np.float32, True), (np.float16, False)):
        path = tmp_path / f"{np.dtype(dtype).name}.npz"
        path.write_bytes(npz(mu=mu.astype(dtype), sigma=sigma.astype(dtype)))
        if accepted:
            assert read_stats_file(path).mu.shape == (120,)
        else:
            with pytest.raises(BadStatsFile, match="not positive semi-definite"):
                read_stats_file(path)


@st.composite
def covariances(draw) -> tuple[np.ndarray, float]:
    """A symmetric matrix (a covariance, shifted by a multiple of its largest eigenvalue) and lambda_min/lambda_max."""
    d = draw(st.sampled_from([1, 2, 3, 8, 40, 65, 150]))  # above 64: the Lanczos path
    rank = draw(st.integers(1, d))
    seed = draw(st.integers(0, 2**32 - 1))
    factor = np.random.default_rng(seed).standard_normal((d, rank)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    sigma = factor @ factor.T
    largest = float(np.linalg.eigvalsh(sigma)[-1])
    shift = draw(st.sampled_from([0.0, 1e-9, -1e-9, -1e-7, -5e-6, -1e-4, -0.5, 1e-3]))
    sigma = sigma + shift * largest * np.eye(d)
    values = np.linalg.eigvalsh(sigma)
    return sigma, float(values[0] / values[-1]) if values[-1] > 0 else -math.inf


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=covariances())
def test_psd_decision_agrees_with_a_full_eigensolve(tmp_path, case):
    sigma, ratio = case
    assume(abs(ratio + PSD_TOL) > 1e-7)  # not within rounding of the boundary itself
    path = tmp_path / "cov.npz"
    path.write_bytes(npz(mu=np.zeros(len(sigma)), sigma=sigma))
    if ratio >= -PSD_TOL:
        stats = read_stats_file(path)
        assert np.allclose(stats.sigma, sigma, rtol=0, atol=1e-12 * np.abs(sigma).max())
    else:
        with pytest.raises(BadStatsFile, match="positive semi-definite"):
            read_stats_file(path)


DTYPES = ["<f8", "<f4", "<f2", "<i8", "|b1", "<c16", "<U6", "|O"]
SHAPES = ["d", "dd", "d,d+1", "scalar", "empty", "2,d"]
VALUES = ["covariance", "random", "nan", "inf", "huge", "zero"]


def _array(draw, d: int) -> np.ndarray:
    shape_name = draw(st.sampled_from(SHAPES))
    shape = {"d": (d,), "dd": (d, d), "d,d+1": (d, d + 1), "scalar": (), "empty": (0,), "2,d": (2, d)}[shape_name]
    kind = draw(st.sampled_from(VALUES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.standard_normal(shape)
    if kind == "covariance" and shape == (d, d):
        values = values @ values.T / d
    elif kind == "nan" and values.size:
        values.flat[0] = np.nan
    elif kind == "inf" and values.size:
        values.flat[-1] = -np.inf
    elif kind == "huge":
        values = values * 1e300
    elif kind == "zero":
        values = np.zeros(shape)
    dtype = draw(st.sampled_from(DTYPES))
    if dtype == "|O":
        return np.array(values.tolist() if values.ndim else [values.item()], dtype=object)
    with np.errstate(all="ignore"):
        return values.astype(dtype)


@st.composite
def stats_files(draw) -> bytes:
    """Each member present or not, a valid value or a random one; about a third of the files are valid."""
    likely = st.integers(0, 9).map(lambda roll: roll >= 2)  # True 8 times in 10
    d = DIM if draw(likely) else draw(st.sampled_from([1, 3]))
    members = {}
    if draw(likely):
        members["mu"] = MU[:d].copy() if draw(likely) else _array(draw, d)
    if draw(likely):
        members["sigma"] = (SIGMA if d == DIM else gaussian(d, seed=1)[1]) if draw(likely) else _array(draw, d)
    if draw(st.booleans()):
        members["n"] = draw(st.sampled_from([np.int64(-1), np.int64(7), np.int64(1200), np.int64(0), np.arange(3),
                                             np.float32(2)]))
    if draw(st.booleans()):
        members["meta"] = np.array(draw(st.sampled_from(['{"extractor": "pixels"}', "{}", "{", "[]", "null",
                                                         '{"dim": 5}', '{"extractor": "inception"}',
                                                         '{"preprocessing": 3}'])))
    return npz(**members)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=stats_files())
def test_random_statistics_files_give_a_number_or_one_line(tmp_path, capsys, images, data):
    path = tmp_path / "random.npz"
    path.write_bytes(data)
    code, lines, out = cli(capsys, [*distance_argv(path, images), "--json"])
    event(f"exit {code}")
    if code == 0:
        assert math.isfinite(json.loads(out)["metrics"]["fd"]["overall"]["value"])
    else:
        assert code == 2 and len(lines) == 1, lines
        assert lines[0].startswith("evalkit: error: ") and str(path) in lines[0], lines
