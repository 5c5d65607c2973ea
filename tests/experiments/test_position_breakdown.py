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
    orders = re.findall(r"^\| (left_of|right_of|above|below|all relations) \| (\d+) \| (\d+) \(\d+%\) \| "
                        r"(\d+) \(\d+%\) \| (\d+) \(\d+%\) \|$", text, re.MULTILINE)
    assert orders and orders[-1][0] == "all relations"
    assert all(int(n) == int(a) + int(b) + int(c) for _, n, a, b, c in orders)
    assert int(orders[-1][1]) == sum(int(n) for _, n, *_ in orders[:-1])
    (run,) = list_runs(runs)
    assert run.manifest["adapter"]["config"]["stages"] == ["base"]
    assert len(run.completed_records()) == sum(expected.values())


def test_relation_order_tells_a_reversed_layout_from_the_named_one_and_the_other_axis(tmp_path):
    import random
    from dataclasses import replace
    from types import SimpleNamespace

    from evalkit.toyworld.captions import scene_spec
    from evalkit.toyworld.render import render
    from evalkit.toyworld.scenes import sample_scene

    rng = random.Random(5)
    scene = next(s for s in (sample_scene(rng, "train", "Positional") for _ in range(200))
                 if s.relation == "left_of")
    a, b = scene.objects
    swapped = replace(scene, objects=(replace(a, position=b.position), replace(b, position=a.position)))
    # the subject straight under the object, far enough that the vertical offset dominates
    stacked = replace(scene, objects=(replace(a, position=(0.5, 0.85)), replace(b, position=(0.5, 0.15))))
    records, paths = [], []
    for index, drawn in enumerate((scene, swapped, stacked)):
        path = tmp_path / f"{index}.png"
        render(drawn, 128).save(path)
        records.append(SimpleNamespace(prompt_index=index, extra={"spec": scene_spec(scene)}))
        paths.append(path)
    counts = position_breakdown.relation_order(records, paths)
    assert counts == {"left_of": {"as named": 1, "reversed": 1, "other axis": 1}}
    assert position_breakdown.order_lines(counts)[-1] == "| all relations | 3 | 1 (33%) | 1 (33%) | 1 (33%) |"
