"""What the rating load and attack experiments share: synthetic runs to build a study from, the real Streamlit
app started as a subprocess, and percentiles.

The runs are real run directories (index, manifest, PNG files) with solid-colour images, so a study built from them
goes through ``evalkit.rating.build`` and the app serves their files exactly as it would a model's.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.runs.store import ImageRecord, Run, image_file

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app.py"
CATEGORIES = ("Colors", "Counting")
START_TIMEOUT_S = 90.0


def synthetic_run(root: Path, run_id: str, prompts: int, samples: int, shade: int,
                  prompt_format: str = "synthetic prompt {} for the rating load test", size: int = 16) -> Path:
    """A finished run of ``prompts`` x ``samples`` solid-colour PNGs; ``prompt_format`` gets the prompt index."""
    path = Path(root) / run_id
    records = [ImageRecord(prompt_index=p, sample=s, seed=p * 100 + s, file=image_file(p, s),
                           prompt=prompt_format.format(p), category=CATEGORIES[p % len(CATEGORIES)])
               for p in range(prompts) for s in range(samples)]
    manifest = {"run_id": run_id, "benchmark": {"name": "synthetic", "content_hash": "synthetic-1", "prompts": prompts},
                "adapter": {"name": "synthetic", "config": {}, "checkpoint_hash": None}, "seed": 0,
                "images_per_prompt": samples, "height": size, "width": size, "n_images": prompts * samples}
    run = Run.create(path, manifest, records)
    for record in records:
        colour = (shade, (40 * record.prompt_index) % 256, (60 * record.sample) % 256)
        run.save_image(record, Image.new("RGB", (size, size), colour))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(db_path: str | Path, log_path: str | Path, admin_token: str | None = None) -> Iterator[str]:
    """`streamlit run app.py -- --db DB` on a free local port, as a rater would reach it; yields the base URL.

    The admin token goes through the environment (EVALKIT_ADMIN_TOKEN), never the command line, where other
    users of the machine could read it."""
    port = free_port()
    env = {**os.environ, "EVALKIT_ADMIN_TOKEN": admin_token or ""}
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port", str(port),
               "--server.fileWatcherType", "none", "--", "--db", str(db_path)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process, Path(log_path))
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise EvalkitError("the rating app did not start:\n" + log_path.read_text()[-2000:])
        time.sleep(0.3)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in [0, 100]): a value that was measured, never an interpolation."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
