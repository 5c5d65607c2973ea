"""Smoke test: the rating load script on a few storage-layer raters writes its table and exits 0."""

import re

import pytest

from evalkit.experiments import rating_load


def test_storage_load_report(tmp_path):
    out = tmp_path / "load.md"
    assert rating_load.main(["--no-browser", "--storage-raters", "3", "--storage-votes", "4", "--out", str(out)]) == 0
    text = out.read_text()
    assert "`python -m evalkit.experiments.rating_load --no-browser --storage-raters 3" in text
    rows = re.findall(r"^\| storage \((processes|threads)\) \| NORMAL \| 3 x 4 \| 24 \| 24 \| 0 \| 0 \| 0 \| 12/12 \|",
                      text, re.MULTILINE)
    assert rows == ["processes", "threads"]


def test_bad_workers_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        rating_load.main(["--no-browser", "--workers", "fibres", "--out", str(tmp_path / "x.md")])
    assert refused.value.code == 2 and "processes, threads" in capsys.readouterr().err
