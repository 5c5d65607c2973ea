"""Smoke test: the relation-direction probes on a handful of captions write a sane table."""

import re

from evalkit.experiments import text_probe


def test_small_probe_writes_six_accuracies(tmp_path):
    out = tmp_path / "probe.md"
    assert text_probe.main(["--train", "40", "--test", "20", "--steps", "30", "--threads", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "`python -m evalkit.experiments.text_probe --train 40 --test 20 --steps 30`" in text
    rows = re.findall(r"^\| (last layer|input embeddings|both) \| (linear|MLP \(256 hidden\)) \| ([\d.]+) \| ([\d.]+) \|$",
                      text, re.MULTILINE)
    assert len(rows) == 6
    assert all(0.0 <= float(fit) <= 1.0 and 0.0 <= float(held) <= 1.0 for *_, fit, held in rows)
    # Each caption gives one token per colour, labelled low side for exactly one of the two: classes balance.
    tokens = re.search(r": (\d+) training and (\d+) held-out colour tokens", text)
    assert tokens and int(tokens.group(1)) % 2 == 0 and 0 < int(tokens.group(1)) <= 80 and 0 < int(tokens.group(2)) <= 40


def test_relation_captions_all_hold_a_relation():
    captions = text_probe.relation_captions("train", 5, 0)
    assert len(captions) == 5 and all(scene.relation for scene, _ in captions)
