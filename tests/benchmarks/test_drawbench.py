import shutil
from pathlib import Path

import pytest

from evalkit.benchmarks import sources
from evalkit.benchmarks.registry import load_benchmark
from evalkit.errors import EvalkitError

OFFICIAL_COUNTS = {
    "Colors": 25, "Conflicting": 10, "Counting": 19, "DALL-E": 20, "Descriptions": 20, "Gary Marcus et al.": 10,
    "Misspellings": 10, "Positional": 20, "Rare Words": 7, "Reddit": 38, "Text": 21,
}


def test_drawbench_has_the_official_200_prompts_in_11_categories(shared_data):
    bench = load_benchmark("drawbench")
    assert len(bench.rows) == 200
    assert bench.categories() == OFFICIAL_COUNTS
    assert bench.content_hash == sources.manifest("drawbench")["content_hash"]
    assert [row.index for row in bench.rows] == list(range(200))
    assert Path(bench.source) == (shared_data / "drawbench" / "prompts.csv").resolve()


def _sheet_export(shared_data: Path, target: Path) -> Path:
    """What the Google Sheet's CSV export looks like: `Prompts,Category` header, CRLF, a category with a trailing space."""
    text = (shared_data / "drawbench" / "prompts.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    lines[0] = "Prompts,Category"
    lines = [line[: -len("Gary Marcus et al.")] + "Gary Marcus et al. " if line.endswith(",Gary Marcus et al.") else line
             for line in lines]
    target.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return target


def test_the_sheet_export_format_verifies_with_the_same_hash(shared_data, tmp_path):
    export = _sheet_export(shared_data, tmp_path / "export.csv")
    bench = load_benchmark("drawbench", str(export))
    assert bench.content_hash == sources.manifest("drawbench")["content_hash"]
    assert bench.categories() == OFFICIAL_COUNTS


def test_an_edited_copy_in_evalkit_data_is_rejected(shared_data, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "drawbench").mkdir(parents=True)
    text = (shared_data / "drawbench" / "prompts.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    lines[5] = lines[5].replace("car", "bus", 1) if "car" in lines[5] else "Something else," + lines[5].rsplit(",", 1)[1]
    (data / "drawbench" / "prompts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("EVALKIT_DATA", str(data))
    with pytest.raises(EvalkitError, match="not the official drawbench prompt list: content hash"):
        load_benchmark("drawbench")


def test_a_custom_prompt_file_given_as_drawbench_points_to_the_file_benchmark(tmp_path):
    custom = tmp_path / "mine.csv"
    custom.write_text("prompt,category\na cat,Animals\n")
    with pytest.raises(EvalkitError, match="1 rows, expected 200.*--benchmark file"):
        load_benchmark("drawbench", str(custom))


def test_offline_without_any_copy_says_how_to_point_at_one(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_DATA", str(tmp_path / "nothing-here"))
    with pytest.raises(EvalkitError, match="EVALKIT_DATA"):
        load_benchmark("drawbench")


def test_the_user_cache_is_used_when_evalkit_data_is_unset(shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("EVALKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = sources.cache_dir() / "drawbench" / "prompts.csv"
    cached.parent.mkdir(parents=True)
    shutil.copy(shared_data / "drawbench" / "prompts.csv", cached)
    assert Path(load_benchmark("drawbench").source) == cached.resolve()


def test_a_verified_download_is_cached_and_a_bad_one_is_not(shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("EVALKIT_DATA", raising=False)
    monkeypatch.delenv("EVALKIT_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    served = {"file": tmp_path / "bad.csv"}
    served["file"].write_text("prompt,category\ntruncated,Colors\n")
    monkeypatch.setattr(sources, "_download", lambda url, target: shutil.copy(served["file"], target))
    cached = sources.cache_dir() / "drawbench" / "prompts.csv"

    with pytest.raises(EvalkitError, match="not the official drawbench"):
        load_benchmark("drawbench")
    assert not cached.exists()

    served["file"] = _sheet_export(shared_data, tmp_path / "export.csv")
    bench = load_benchmark("drawbench")
    assert cached.is_file() and Path(bench.source) == cached
    assert bench.categories() == OFFICIAL_COUNTS


def test_a_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALKIT_DATA", raising=False)
    monkeypatch.delenv("EVALKIT_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(url, target):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(sources, "_download", offline)
    with pytest.raises(EvalkitError, match="could not download drawbench .*Network is unreachable.*EVALKIT_DATA"):
        load_benchmark("drawbench")
