"""Parts (a), (v), (b) of metrics_bench.py: the Inception feature pipeline against torchmetrics and against the
machine's fp32 limit, the network variants behind the choice of backend, and the Frechet distance against sqrtm."""

from __future__ import annotations

import copy
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import torch

from evalkit.images import list_images, load_rgb
from evalkit.metrics import inception
from evalkit.metrics.extractors import inception_runtime
from evalkit.metrics.extractors.inception import InceptionFeatures
from evalkit.metrics.frechet import FrechetReference
from metrics_bench_common import INCEPTION_GFLOP, load_average, matmul_gflops, openvino_matmul_gflops, spread, timed


def uint8_batches(files, batch_size=32):
    for start in range(0, len(files), batch_size):
        yield torch.stack([torch.tensor(load_rgb(p)).permute(2, 0, 1) for p in files[start : start + batch_size]])


def torchmetrics_fid(a_files, b_files, weights) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
    with torch.inference_mode():
        for batch in uint8_batches(a_files):
            metric.update(batch, real=True)
        for batch in uint8_batches(b_files):
            metric.update(batch, real=False)
    return float(metric.compute())


def evalkit_fid(a_dir, b_dir, weights, backend: str) -> float:
    """files -> decode -> resize -> Inception -> statistics -> FID through the library API, no feature cache; the
    network built as in a new process (the per-process memo cleared; OpenVINO's converted IR read from the cache,
    as on every run after the first with a weights file)."""
    import evalkit

    inception_runtime._COMPILED.clear()
    config = evalkit.ScoringConfig(device="cpu", use_cache=False, progress=False, weights={"inception": weights},
                                   extractor_settings={"inception": {"backend": backend}})
    document = evalkit.distance(a_dir, b_dir, metrics=["fid"], config=config)
    return float(document["metrics"]["fid"]["overall"]["value"])


def evalkit_features(files, weights, backend: str) -> None:
    """The feature pipeline alone (files -> decode -> resize -> pool3 features, decode in 2 threads while the
    network runs), the network built beforehand: what the share of the machine's limit is measured on."""
    from evalkit.metrics.extractors import ExtractorOptions, create_extractor

    extractor = create_extractor("inception", ExtractorOptions(weights=weights, settings={"backend": backend}))
    extractor.network()
    return timed(lambda: extractor.compute(files))[1]


def setup_seconds(weights, backend: str, first: bool) -> float:
    """Seconds to build the network: ``first``: with no converted IR in the cache (the first run with a weights
    file); else as later runs do."""
    inception_runtime._COMPILED.clear()
    if first and backend == "openvino":
        xml = inception_runtime.converted_model_path(InceptionFeatures(weights, backend="torch").weights_sha256)
        xml.unlink(missing_ok=True)
    _, seconds = timed(lambda: InceptionFeatures(weights, backend=backend).network())
    return seconds


END_TO_END = ("evalkit_openvino", "evalkit_torch", "torchmetrics")
FEATURES = ("evalkit_openvino_features", "evalkit_torch_features")


def part_a(a_dir: Path, b_dir: Path, weights: Path, repeats: int) -> dict:
    """Each round: the matmul limit; evalkit (openvino), torchmetrics, evalkit (torch) from files to FID; the
    feature pipeline alone for both backends; the matmul again. All on the same files."""
    a_files, b_files = list_images(a_dir), list_images(b_dir)
    n = len(a_files) + len(b_files)
    fid = {"evalkit_openvino": lambda: evalkit_fid(a_dir, b_dir, weights, "openvino"),
           "torchmetrics": lambda: torchmetrics_fid(a_files, b_files, weights),
           "evalkit_torch": lambda: evalkit_fid(a_dir, b_dir, weights, "torch")}
    first = setup_seconds(weights, "openvino", True)  # converts and caches the network before the rounds
    rounds = []
    for _ in range(repeats):
        found = {"gflops": matmul_gflops(), "ov_gflops": openvino_matmul_gflops(), "load": load_average()}
        for name, run in fid.items():
            found[name + "_fid"], found[name + "_s"] = timed(run)
        for backend in ("openvino", "torch"):
            found[f"evalkit_{backend}_features_s"] = evalkit_features(a_files + b_files, weights, backend)
        found["gflops_after"], found["ov_gflops_after"] = matmul_gflops(), openvino_matmul_gflops()
        rounds.append(found)
    setup = {"openvino_first": first, "openvino": setup_seconds(weights, "openvino", False),
             "torch": setup_seconds(weights, "torch", False)}
    return summarise_a(rounds, n, setup)


def summarise_a(rounds: list[dict], n: int, setup: dict) -> dict:
    limit_gflops = max(max(r["gflops"], r["gflops_after"]) for r in rounds)  # the machine's best seen in this run
    ov_gflops = max(max(r.get("ov_gflops") or 0, r.get("ov_gflops_after") or 0) for r in rounds)
    limit_img_s, strict_img_s = limit_gflops / INCEPTION_GFLOP, max(limit_gflops, ov_gflops) / INCEPTION_GFLOP
    out = {"n": n, "rounds": rounds, "limit_gflops": limit_gflops, "limit_img_s": limit_img_s,
           "ov_limit_gflops": ov_gflops, "strict_limit_img_s": strict_img_s,
           "setup_s": setup, "gflops_spread": spread([r["gflops"] for r in rounds] + [r["gflops_after"] for r in rounds])}
    for name in END_TO_END + FEATURES:
        rates = [n / r[name + "_s"] for r in rounds]
        out[name] = {"img_s_all": rates, "img_s": min(rates), "img_s_best": max(rates), "spread": spread(rates),
                     "of_limit": min(rates) / limit_img_s, "of_limit_best": max(rates) / limit_img_s,
                     "of_strict_limit": min(rates) / strict_img_s}
        if name in END_TO_END:
            out[name]["fid"] = rounds[0][name + "_fid"]
    for name in ("evalkit_openvino", "evalkit_torch"):
        ours = out[name]
        ours["vs_torchmetrics"] = min(r["torchmetrics_s"] / r[name + "_s"] for r in rounds)  # the smallest round
        ours["fid_rel_diff"] = max(abs(r[name + "_fid"] - r["torchmetrics_fid"]) / abs(r["torchmetrics_fid"])
                                   for r in rounds)
    return out


# --- (v) network only: each variant on one preprocessed batch, interleaved --------------------------------------

def _eager_channels_last(net):
    model = inception_runtime.Pool3(copy.deepcopy(net)).to(memory_format=torch.channels_last).eval()
    return lambda x: model(x.contiguous(memory_format=torch.channels_last))


def _jit_freeze(net):
    model = inception_runtime.Pool3(copy.deepcopy(net)).to(memory_format=torch.channels_last).eval()
    example = torch.zeros(2, 3, 299, 299).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(model, example))
    return lambda x: frozen(x.contiguous(memory_format=torch.channels_last))


def _onnxruntime(net):
    import onnxruntime

    path = Path(tempfile.mkdtemp(prefix="evalkit-bench-")) / "inception.onnx"
    torch.onnx.export(inception_runtime.Pool3(copy.deepcopy(net)).eval(), (torch.zeros(2, 3, 299, 299),), str(path),
                      input_names=["x"], output_names=["f"], dynamic_axes={"x": {0: "n"}, "f": {0: "n"}},
                      dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def _openvino_one_stream(net):
    import openvino as ov

    model = ov.convert_model(inception_runtime.Pool3(copy.deepcopy(net)).eval(),
                             example_input=torch.zeros(2, 3, 299, 299))
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                                      "INFERENCE_NUM_THREADS": torch.get_num_threads()})
    request = compiled.create_infer_request()
    return lambda x: torch.from_numpy(request.infer({0: x.numpy()})[0].copy())


VARIANTS = {
    "torch eager, channels_last (the earlier path)": (_eager_channels_last, None),
    "torch, BatchNorm folded, channels_last (backend=torch)":
        (lambda net: inception_runtime.torch_forward(copy.deepcopy(net), "cpu"), None),
    "torch.jit trace + freeze, channels_last (deprecated API)": (_jit_freeze, None),
    "ONNX Runtime 1 session x 2 threads": (_onnxruntime, "onnxruntime"),
    "OpenVINO 1 stream x 2 threads": (_openvino_one_stream, "openvino"),
    "OpenVINO 2 streams x 1 thread (backend=openvino)":
        (lambda net: inception_runtime.openvino_forward(copy.deepcopy(net), "bench"), "openvino"),
}


def part_v(weights: Path, batch: int, rounds: int) -> dict:
    net = inception.load_network(weights)
    x = torch.randn(batch, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = inception.pool3_features(net, x)
    built, out = {}, {}
    for name, (build, package) in VARIANTS.items():
        if package and importlib.util.find_spec(package) is None:
            out[name] = {"skipped": f"{package} is not installed"}
            continue
        with torch.inference_mode():
            forward, build_s = timed(lambda: build(net))
            features = forward(x)
        err = float((features.float() - reference).abs().max() / reference.abs().max())
        built[name], out[name] = forward, {"build_s": build_s, "max_rel_err": err, "img_s_all": [], "of_limit_all": []}
    gflops, ov_gflops = [], []
    for _ in range(rounds):
        gflops.append(matmul_gflops(repeats=1))
        ov_gflops.append(openvino_matmul_gflops(repeats=1))
        for name, forward in built.items():
            with torch.inference_mode():
                _, seconds = timed(lambda: forward(x))
            out[name]["img_s_all"].append(batch / seconds)
            out[name]["of_limit_all"].append(batch / seconds * INCEPTION_GFLOP / gflops[-1])
    for name in built:
        rates = out[name]["img_s_all"]
        out[name].update(img_s=float(np.median(rates)), spread=spread(rates),
                         of_limit=float(np.median(out[name]["of_limit_all"])))
    return {"batch": batch, "rounds": rounds, "gflops_all": gflops, "ov_gflops_all": ov_gflops, "variants": out,
            "load": load_average()}


# --- (b) Frechet distance at d = 2048 -------------------------------------------------------------------------------

def part_b(repeats: int = 2) -> dict:
    import scipy.linalg

    rng = np.random.default_rng(0)
    d = 2048
    x = rng.standard_normal((4000, d)) @ (np.eye(d) + 0.05 * rng.standard_normal((d, d)))
    y = rng.standard_normal((4000, d)) * 1.1 + 0.2
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)

    def scipy_fd():
        root = scipy.linalg.sqrtm(s1 @ s2)
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root.real))

    expected, t_scipy = timed(scipy_fd)
    first, t_first = timed(lambda: FrechetReference(mu1, s1).distance(mu2, s2))
    reference = FrechetReference(mu1, s1)
    later = [timed(lambda: reference.distance(mu2, s2))[1] for _ in range(repeats)]
    return {"d": d, "scipy_sqrtm_s": t_scipy, "first_s": t_first, "cached_s": min(later),
            "speedup_first": t_scipy / t_first, "speedup_cached": t_scipy / min(later),
            "fid_scipy": expected, "fid_evalkit": first, "rel_diff": abs(first - expected) / abs(expected),
            "load": load_average()}
