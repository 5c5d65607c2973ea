"""Metrics benchmark: evalkit against the field's reference implementations and against the machine's measured
fp32 limit, each comparison made in one process on the same images and the same (random-initialised) networks.

    python benchmarks/perf/metrics_bench.py --parts a,v,b,e,f [--images 400] [--repeats 2]
        -> reports/perf/metrics.md (and the raw numbers in reports/perf/metrics.json)

(a) Inception feature pipeline (files -> decode -> resize -> Inception pool3 -> FID), evalkit's two backends vs
    torchmetrics' FrechetInceptionDistance, in images/s, as a share of the machine's limit (matmul GFLOP/s of a
    4096^3 fp32 torch matmul on the same threads, measured in the same run, / 11.4 GFLOP per image), and the FID
    relative difference
(v) the network alone, every variant considered for (a) on one batch, interleaved round by round
(b) Frechet distance at d = 2048: evalkit's eigenvalue form vs scipy.linalg.sqrtm as pytorch-fid computes it
(e) one scoring call (FID, KID, CMMD, PRDC, FD-DINOv2, CLIP score) vs each reference implementation run separately
(f) peak RSS and time of KID, CMMD, PRDC and streaming statistics at 30,000 x 2048 features per side (subprocesses)

Every run of a part is kept in metrics.json with its time, load average and command; the report takes the
conservative figure over runs (the smallest speed-up) and says how far the runs were apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

from metrics_bench_common import load_average, machine, make_images, now  # noqa: E402

PARTS = ("a", "v", "b", "e", "f")


def command_line(args) -> str:
    extra = f" --images {args.images}" if set(args.parts.split(",")) & {"a", "e"} else ""
    extra += f" --repeats {args.repeats}" if "a" in args.parts or "e" in args.parts else ""
    extra += f" --batch {args.batch} --rounds {args.rounds}" if "v" in args.parts else ""
    extra += f" --n {args.n}" if "f" in args.parts else ""
    return f"python benchmarks/perf/metrics_bench.py --parts {args.parts}{extra}"


def run_part(part: str, args, tmp: Path, inputs: dict) -> dict:
    import metrics_bench_inception as inc

    if part == "a":
        return inc.part_a(inputs["a"], inputs["b"], inputs["weights"], args.repeats)
    if part == "v":
        return inc.part_v(inputs["weights"], args.batch, args.rounds)
    if part == "b":
        return inc.part_b()
    if part == "e":
        import metrics_bench_scoring

        return metrics_bench_scoring.part_e(inputs["a"], inputs["b"], inputs["weights"], tmp, args.repeats)
    if part == "f":
        import metrics_bench_memory

        return metrics_bench_memory.part_f(args.n)
    raise SystemExit(f"unknown part {part!r}; parts: {', '.join(PARTS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--images", type=int, default=400, help="(a), (e): total images, half per side")
    parser.add_argument("--repeats", type=int, default=2, help="(a), (e): rounds of every implementation")
    parser.add_argument("--batch", type=int, default=32, help="(v): batch size")
    parser.add_argument("--rounds", type=int, default=3, help="(v): interleaved rounds")
    parser.add_argument("--n", type=int, default=30000, help="(f): features per side")
    parser.add_argument("--out", default=str(REPO / "reports" / "perf" / "metrics.md"))
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from metrics.json")
    parser.add_argument("--memory-child", nargs=2, metavar=("WHAT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        import metrics_bench_memory

        return metrics_bench_memory.child(args.memory_child[0], int(args.memory_child[1]))
    results_file = Path(args.out).with_suffix(".json")
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    results.setdefault("runs", {})
    if not args.report_only:
        from evalkit.metrics.inception import save_random_weights

        with tempfile.TemporaryDirectory(prefix="evalkit-bench-") as tmp:
            tmp = Path(tmp)
            os.environ["EVALKIT_CACHE_DIR"] = str(tmp / "cache")  # no user cache helps or is touched
            half = args.images // 2
            inputs = {"weights": save_random_weights(tmp / "inception.pth"),
                      "a": make_images(tmp / "a", half, 1), "b": make_images(tmp / "b", half, 2)}
            for part in args.parts.split(","):
                started, load_before = now(), load_average()
                found = run_part(part, args, tmp, inputs)
                found.update(measured_at=started, load_before=load_before, load_after=load_average(),
                             command=command_line(args), machine=machine())
                results["runs"].setdefault(part, []).append(found)
                print(json.dumps({part: found}, default=str)[:2000], flush=True)
                results_file.parent.mkdir(parents=True, exist_ok=True)
                results_file.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    import metrics_bench_report

    metrics_bench_report.write(Path(args.out), results)


if __name__ == "__main__":
    main()
