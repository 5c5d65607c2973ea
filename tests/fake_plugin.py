"""A third-party adapter package made on the fly: a dist-info with an `evalkit.adapters` entry point and a module.

Its images are a deterministic function of (prompt, seed). `--opt delay=SECONDS` slows each image down, and
`--opt hang_after=N` makes the process hang (sleep) instead of making its N+1-th image, so a test can kill a run at
a known point without racing it. Neither option changes the run's spec (its id)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

MODULE = textwrap.dedent(
    '''
    import hashlib, time
    import numpy as np
    from PIL import Image
    from evalkit.adapters.base import GenerationBatch, check_known_options, read_option

    class FakeAdapter:
        name = "fake"
        default_size = (16, 16)

        def __init__(self, options):
            check_known_options(options, {"delay", "hang_after"}, "fake")
            self.delay = read_option(options, "delay", 0.0, float)
            self.hang_after = read_option(options, "hang_after", None, int)
            self.made = 0

        def config(self):
            return {"kind": "seeded noise"}

        def checkpoint_hash(self):
            return None

        def generate(self, batch: GenerationBatch):
            images = []
            for prompt, seed in zip(batch.prompts, batch.seeds):
                time.sleep(self.delay)
                while self.hang_after is not None and self.made >= self.hang_after:
                    time.sleep(60)
                self.made += 1
                tint = np.frombuffer(hashlib.sha256(prompt.encode()).digest()[:3], dtype=np.uint8)
                noise = np.random.default_rng(seed).integers(0, 64, (batch.height, batch.width, 3))
                images.append(Image.fromarray((noise + tint // 2).astype(np.uint8), "RGB"))
            return images

    def create(options):
        return FakeAdapter(options)
    '''
)


def install(root: Path) -> Path:
    """Write the plugin under `root` and put it on sys.path; returns the folder to add to PYTHONPATH."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "evalkit_fake_plugin.py").write_text(MODULE)
    dist = root / "evalkit_fake_plugin-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalkit-fake-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalkit.adapters]\nfake = evalkit_fake_plugin:create\n")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root
