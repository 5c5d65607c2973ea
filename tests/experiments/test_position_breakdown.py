"""Smoke test: the position breakdown on a tiny cascade, scored by the toyworld metric grouped by kind."""

import re

from evalkit.benchmarks.registry import load_benchmark
from evalkit.experiments import position_breakdown
from evalkit.runs.store import list_runs

from .toyworld_helpers import tiny_minilm_checkpoint


def test_breakdown_on_a_tiny_cascade(tmp_path):
    checkpoint = tiny_minilm_checkpoint(tmp_path / "ckpt")
    out, runs = tmp_path / "breakdown.md", tmp_path / "runs"
    assert position_breakdown.main(["--checkpoint", str(checkpoint), "--images-per-prompt", "1", "--threads", "1",
                                    "--runs", str(runs), "--out", str(out)]) == 0
    text = out.read_text()
    command = "python -m evalkit.experiments.position_breakdown --benchmark toyworld --stages 1 --images-per-prompt 1"
    assert f"`{command}`" in text
    positional = [r.extra["spec"] for r in load_benchmark("toyworld").rows if r.category == "Positional"]
    expected = {"region": sum(bool(s["region"]) for s in positional),
                "relation": sum(bool(s["relation"]) for s in positional)}
    rows = {m.group(1): m for m in re.finditer(r"^\| (region|relation) \| (\d+) \| (.+?) \| (.+?) \| (.+?) \| (.+?) \| "
                                               r"(.+?) \|$", text, re.MULTILINE)}
    assert set(rows) == {"region", "relation"}
    for kind, match in rows.items():
        assert int(match.group(2)) == expected[kind]
        assert match.group(4).endswith(f"n={expected[kind]}")  # position holds: every image was asked
        assert re.fullmatch(r"\d+\.\d% \[\d+-\d+\] n=\d+", match.group(7))  # random scenes, 5 per prompt
    (run,) = list_runs(runs)
    assert run.manifest["adapter"]["config"]["stages"] == ["base"]
    assert len(run.completed_records()) == sum(expected.values())
