"""Reading a statistics file (``.npz``: ``mu``, ``sigma``, optional ``n`` and ``meta``): the one validation point.

``read_stats_file`` checks every member from its ``.npy`` header before reading any array (a header claiming a
100000 x 100000 covariance costs nothing), then by value. Each refusal is one line naming the file:

  container  not a zip archive (zero bytes, a bare ``.npy``, a pickle, text), truncated, or a member that fails
             to decompress; object arrays are refused from the header: a statistics file is never unpickled
  keys       ``mu`` and ``sigma`` are required; other members are ignored (pytorch-fid and clean-fid write only
             those two; evalkit adds ``n`` and ``meta``)
  shapes     mu (d,) and sigma (d, d) with 1 <= d <= MAX_DIM = 16384 (a float64 sigma of 2 GiB)
  dtypes     real floating point only (float16/32/64); bool, integers, complex and strings are refused
  values     finite and |x| <= 1e150, so squares summed over d <= 16384 dimensions stay finite in float64
  sigma      symmetric: max|S - S^T| <= 1e-6 max|S|; positive semi-definite: lambda_min >= -1e-6 lambda_max,
             decided by a Cholesky factorisation of S + 1e-6 lambda_max I (lambda_max by Lanczos, scipy's
             eigsh). A true covariance passes: float64 rounding gives lambda_min ~ -1e-15 lambda_max at d = 2048,
             float32 storage ~ -1e-8; a rank-deficient one stored as float16 (~ -1e-4) fails, as do matrices
             that are not covariances
  n          one integer >= 2, or -1 (unknown, as evalkit writes it); 0 or 1 images have no covariance
  meta       one JSON object (a string member of at most 1M characters); its ``preprocessing``, if any, an
             object and its ``dim``, if any, equal to d

Whether the statistics belong to the feature space they are compared in (extractor, weights, preprocessing,
dimension) is decided where they are compared (``evalkit.metrics.score``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from evalkit.errors import EvalkitError

MAX_DIM = 16_384
MAX_ABS = 1e150
SYMMETRY_TOL = 1e-6
PSD_TOL = 1e-6
MAX_META_BYTES = 1 << 20
_OPTIONAL = ("n", "meta")


class BadStatsFile(EvalkitError):
    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: not usable statistics: {problem}")
        self.path, self.problem = path, problem


def read_stats_file(path: str | Path):
    """A checked ``GaussianStats`` (float64 mu and sigma, n or None, meta) from a ``.npz`` file."""
    from evalkit.metrics.stats import GaussianStats

    path = Path(path)
    arrays = _read_members(path)
    mu, sigma = _float_array(path, arrays, "mu"), _float_array(path, arrays, "sigma")
    problem = covariance_problem(mu, sigma)
    if problem:
        raise BadStatsFile(path, problem)
    n = _count(path, arrays.get("n"))
    meta = _meta(path, arrays.get("meta"), len(mu))
    return GaussianStats(mu=mu, sigma=(sigma + sigma.T) / 2, n=n, meta=meta)


def _read_members(path: Path) -> dict[str, np.ndarray]:
    try:
        if not zipfile.is_zipfile(path):
            raise BadStatsFile(path, "not a readable .npz (zip) archive, or a truncated one")
        with zipfile.ZipFile(path) as archive:
            members = {name[:-4]: name for name in archive.namelist() if name.endswith(".npy")}
            missing = [key for key in ("mu", "sigma") if key not in members]
            if missing:
                found = ", ".join(sorted(members)) or "nothing"
                raise BadStatsFile(path, f"no 'mu' and 'sigma' arrays (found: {found})")
            keys = ["mu", "sigma", *(k for k in _OPTIONAL if k in members)]
            headers = {key: _header(archive, members[key]) for key in keys}
            _check_headers(path, headers)
            return {key: _read(archive, members[key]) for key in keys}
    except BadStatsFile:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as error:
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise BadStatsFile(path, f"unreadable .npz ({lines[0][:200]})") from None


def _header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(member)
    return shape, dtype


def _read(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(name) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _check_headers(path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    for key, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise BadStatsFile(path, f"{key} is an object array (statistics files are never unpickled)")
    (mu_shape, _), (sigma_shape, _) = headers["mu"], headers["sigma"]
    if len(mu_shape) != 1 or sigma_shape != (mu_shape[0], mu_shape[0]):
        raise BadStatsFile(path, f"expected mu of shape (d,) and sigma (d, d), got {mu_shape} and {sigma_shape}")
    if not 1 <= mu_shape[0] <= MAX_DIM:
        raise BadStatsFile(path, f"d = {mu_shape[0]} dimensions, expected 1 to {MAX_DIM}")
    for key in ("mu", "sigma"):
        dtype = headers[key][1]
        if dtype.kind != "f":
            raise BadStatsFile(path, f"{key} has dtype {dtype}, expected floating point (float16/32/64)")
    if "n" in headers:
        shape, dtype = headers["n"]
        if dtype.kind not in "iu" or int(np.prod(shape)) != 1:
            raise BadStatsFile(path, f"n has dtype {dtype} and shape {shape}, expected one integer")
    if "meta" in headers:
        shape, dtype = headers["meta"]
        if dtype.kind not in "US" or int(np.prod(shape)) != 1 or dtype.itemsize > 4 * MAX_META_BYTES:
            raise BadStatsFile(path, f"meta has dtype {dtype} and shape {shape}, expected one JSON string")


def _float_array(path: Path, arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    values = np.asarray(arrays[key], dtype=np.float64)
    if not np.isfinite(values).all():
        raise BadStatsFile(path, f"{key} contains NaN or infinite values")
    largest = float(np.abs(values).max())
    if largest > MAX_ABS:
        raise BadStatsFile(path, f"{key} holds |values| up to {largest:.3g}, over {MAX_ABS:g}")
    return values


def covariance_problem(mu: np.ndarray, sigma: np.ndarray) -> str | None:
    """Why (mu, sigma) is not a Gaussian's mean and covariance within the tolerances above; None when it is."""
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        return f"expected mu of shape (d,) and sigma (d, d), got {mu.shape} and {sigma.shape}"
    scale = float(np.abs(sigma).max()) if sigma.size else 0.0
    asymmetry = float(np.abs(sigma - sigma.T).max()) if sigma.size else 0.0
    if asymmetry > SYMMETRY_TOL * scale:
        return f"sigma is not symmetric: max|S - S^T| = {asymmetry:.3g}, over {SYMMETRY_TOL:g} x max|S| = {scale:.3g}"
    if scale == 0.0:
        return None  # a zero covariance (identical features) is positive semi-definite
    sym = (sigma + sigma.T) / 2
    largest = _extreme_eigenvalue(sym, "LA")
    if largest <= 0:
        return f"sigma is not positive semi-definite: its largest eigenvalue is {largest:.3g}"
    if _positive_definite(sym, PSD_TOL * largest):
        return None
    smallest = _extreme_eigenvalue(sym, "SA")
    return (f"sigma is not positive semi-definite: smallest eigenvalue {smallest:.3g} = {smallest / largest:.2g} x "
            f"the largest, below the tolerance of -{PSD_TOL:g} x the largest")


def _extreme_eigenvalue(sym: np.ndarray, which: str) -> float:
    """The largest ("LA") or smallest ("SA") eigenvalue: Lanczos for large matrices, a full solve for small ones."""
    if len(sym) > 64:
        from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

        try:
            return float(eigsh(sym, k=1, which=which, tol=1e-8, return_eigenvectors=False)[0])
        except (ArpackNoConvergence, ArpackError):
            pass
    values = np.linalg.eigvalsh(sym)
    return float(values[-1] if which == "LA" else values[0])


def _positive_definite(sym: np.ndarray, shift: float) -> bool:
    import torch

    shifted = torch.from_numpy(sym.copy())
    shifted.diagonal().add_(shift)
    _, info = torch.linalg.cholesky_ex(shifted)
    return int(info) == 0


def _count(path: Path, n: np.ndarray | None) -> int | None:
    if n is None:
        return None
    value = int(np.asarray(n).reshape(-1)[0])
    if value == -1:
        return None
    if value < 2:
        raise BadStatsFile(path, f"n = {value} images (a covariance needs at least 2; -1 means unknown)")
    return value


def _meta(path: Path, meta: np.ndarray | None, dim: int) -> dict:
    if meta is None:
        return {}
    raw = np.asarray(meta).reshape(-1)[0]
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        found = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadStatsFile(path, "meta is not JSON") from None
    if not isinstance(found, dict):
        raise BadStatsFile(path, f"meta is a JSON {type(found).__name__}, expected an object")
    if "preprocessing" in found and not isinstance(found["preprocessing"], (dict, type(None))):
        raise BadStatsFile(path, "meta's preprocessing is not an object")
    if found.get("dim") is not None and found["dim"] != dim:
        raise BadStatsFile(path, f"meta says dim {found['dim']!r} but mu has {dim} dimensions")
    return found
