"""Generation efficiency of a run (HEIM's efficiency aspect, Lee et al. 2023), from its generation.jsonl.

Each entry is one adapter batch: b images made in s seconds of wall time (the adapter's ``generate`` call only:
not checking or saving the images). With r_i = s_i / b_i, the seconds per image of batch i:

    seconds_per_image           = median_i r_i    the typical cost of an image, robust to a slow first batch
                                                  (weights loading, kernel compilation) and to other jobs
    denoised_seconds_per_image  = min_i r_i       HEIM's "denoised runtime": the run time with as little of the
                                                  machine's noise (contention, warm-up) as was observed

Batch sizes are not equal (the last batch is usually smaller), and per-image cost falls with batch size on most
devices, so both describe the run as it was made (its --batch-size and device), not the model in general.

Adapters that report per-image details (a hosted model: ``latency_ms`` of the request that made the image, the
``cost`` the server reported) add, over every image that has them:

    latency_ms_median   median request latency, in milliseconds
    cost_total          sum of the reported costs (the server's unit), with n_images_with_cost images counted
"""

from __future__ import annotations

import math
import statistics
from typing import Any


def _summary(timings: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [t["seconds"] / t["images"] for t in timings]
    return {
        "n_batches": len(timings),
        "n_images": sum(t["images"] for t in timings),
        "seconds_total": sum(t["seconds"] for t in timings),
        "seconds_per_image": statistics.median(rates) if rates else None,
        "denoised_seconds_per_image": min(rates) if rates else None,
    }


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _details_summary(timings: list[dict[str, Any]]) -> dict[str, Any]:
    details = [d for t in timings for d in t.get("image_details") or []]
    latencies = [d["latency_ms"] for d in details if _number(d.get("latency_ms"))]
    costs = [d["cost"] for d in details if _number(d.get("cost"))]
    summary: dict[str, Any] = {}
    if latencies:
        summary["latency_ms_median"] = statistics.median(latencies)
    if costs:
        summary.update(cost_total=math.fsum(costs), n_images_with_cost=len(costs))
    return summary


def generation_efficiency(timings: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of ``Run.generation_timings()`` (see the module docstring); None rates when nothing was recorded.

    ``devices`` lists every device that made a batch; when a resumed run used more than one, ``by_device`` gives
    the same summary per device, since a median over a CPU's and a GPU's batches describes neither.
    """
    devices = sorted({t["device"] for t in timings})
    summary = {**_summary(timings), "devices": devices, **_details_summary(timings)}
    if len(devices) > 1:
        summary["by_device"] = {d: _summary([t for t in timings if t["device"] == d]) for d in devices}
    return summary
