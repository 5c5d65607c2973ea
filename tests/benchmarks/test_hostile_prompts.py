"""Hostile prompt files through `evalkit run --prompts FILE` and through the reader: every case either reads as
documented (a safe conversion) or is one line, exit 2, naming the file and the line. Never a traceback.

    .venv/bin/python -m pytest tests/benchmarks/test_hostile_prompts.py -q
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.benchmarks.files import read_prompt_file
from evalkit.errors import EvalkitError
from evalkit.runs.store import open_run
from tests import fake_plugin
from tests.hostile import evalkit_cli

BIG = "a" * 2_000_000  # a 2 MB field
LONG = " ".join(["a red cube left of a blue ball"] * 320)  # 9,919 characters: read; encoders truncate it
UTF16_TEXT = "prompt,category\ncafé au lait,Food\nnaïve,Words\n"

# (file name, bytes, expected): expected is a list of prompts (read as documented) or a regex of the one-line error.
CASES = [
    ("big.csv", f"prompt\nsmall\n{BIG}\n".encode(), r"big\.csv, line 3: prompt is 2,000,000 characters long"),
    ("big.tsv", f"prompt\n{BIG}\n".encode(), r"big\.tsv, line 2: prompt is 2,000,000 characters long"),
    ("big.jsonl", (json.dumps({"prompt": BIG}) + "\n").encode(), r"big\.jsonl, line 1: prompt is 2,000,000"),
    ("big.txt", f"small\n{BIG}\n".encode(), r"big\.txt, line 2: prompt is 2,000,000 characters long"),
    ("big-extra.csv", f"prompt,note\nsmall,{BIG}\n".encode(), ["small"]),
    ("long.txt", f"{LONG}\n".encode(), [LONG]),
    ("huge-number.jsonl", b'{"prompt": "a", "x": 1e400}\n', r"huge-number\.jsonl, line 1: not valid JSON \(1e400"),
    ("nul.csv", b"prompt\nab\x00c\n", r"nul\.csv, line 2: NUL byte"),
    ("nul.txt", b"fine\nbad\x00\n", r"nul\.txt, line 2: NUL byte"),
    ("nul.jsonl", b'{"prompt": "a"}\n{"prompt": "b\x00"}\n', r"nul\.jsonl, line 2: NUL byte"),
    ("latin1.csv", "prompt\nok\ncafé\n".encode("latin-1"), r"latin1\.csv, line 3: not valid UTF-8"),
    ("cp1252.txt", "“quoted”\n".encode("cp1252"), r"cp1252\.txt, line 1: not valid UTF-8"),
    ("utf16le-bom.csv", UTF16_TEXT.encode("utf-16"), ["café au lait", "naïve"]),
    ("utf16be-bom.csv", b"\xfe\xff" + UTF16_TEXT.encode("utf-16-be"), ["café au lait", "naïve"]),
    ("utf16le-nobom.csv", UTF16_TEXT.encode("utf-16-le"),
     r"utf16le-nobom\.csv, line 1: NUL byte; .*UTF-16 text without a byte-order mark"),
    ("utf16-odd.csv", UTF16_TEXT.encode("utf-16")[:-1], r"utf16-odd\.csv: not valid UTF-16"),
    ("utf8-bom.csv", "\ufeffprompt\nhello\n".encode(), ["hello"]),
    ("invalid.csv", b"prompt\nok\n\xc3\x28 bad\n", r"invalid\.csv, line 3: not valid UTF-8"),
    ("cut.txt", "ok\nend €".encode()[:-1], r"cut\.txt, line 2: not valid UTF-8"),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"binary\.csv, line 3: NUL byte; a binary file"),
    ("broken.jsonl", b'{"prompt": "a"}\n{"prompt": \n', r"broken\.jsonl, line 2: not valid JSON"),
    ("deep.jsonl", b'{"prompt": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
     r"deep\.jsonl, line 1: not valid JSON \(nested too deeply\)"),
    ("number.jsonl", b'{"prompt": 123}\n', r"number\.jsonl, line 1: prompt must be text, got a number"),
    ("null.jsonl", b'{"prompt": null}\n', r"null\.jsonl, line 1: empty or missing prompt"),
    ("surrogate.jsonl", b'{"prompt": "bad \\ud800 half"}\n', r"surrogate\.jsonl, line 1: .*unpaired surrogate"),
    ("nan.jsonl", b'{"prompt": "a", "score": NaN}\n', r"nan\.jsonl, line 1: not valid JSON \(NaN"),
    ("case-keys.jsonl", b'{"prompt": "a", "Prompt": "b"}\n', r"line 1: keys 'Prompt' and 'prompt' differ only in case"),
    ("category-list.jsonl", b'{"prompt": "a", "category": [1]}\n', r"line 1: category must be text"),
    ("array.jsonl", b'["a"]\n', r"line 1: expected a JSON object"),
    ("u2028.jsonl", '{"prompt": "one\u2028two"}\n'.encode(), ["one\u2028two"]),
    ("formfeed.txt", b"one\x0ctwo\nthree\n", ["one\x0ctwo", "three"]),
    ("nocolumn.csv", b"text,category\na,b\n", r"nocolumn\.csv: no 'prompt' column \(found: category, text\)"),
    ("nocolumn.jsonl", b'{"text": "a"}\n', r"no 'prompt' column \(found: text\)"),
    ("some-missing.jsonl", b'{"prompt": "a"}\n{"text": "b"}\n', r"line 2: empty or missing prompt"),
    ("dup-columns.csv", b"prompt,Prompt\na,b\n", r"dup-columns\.csv, line 1: column 'prompt' appears twice"),
    ("empty.csv", b"", r"empty\.csv is empty"),
    ("spaces.txt", b"  \n\n\t\n", r"spaces\.txt is empty"),
    ("header.csv", b"prompt,category\n", r"header\.csv has a header but no rows"),
    ("header.tsv", b"prompt\tcategory\r\n\r\n", r"header\.tsv has a header but no rows"),
    ("header.jsonl", b"\n\n", r"header\.jsonl is empty"),
    ("dups.csv", b"prompt\nsame\nother\nsame\n", ["same", "other", "same"]),
    ("crlf.csv", b"prompt,category\r\na cat,Animals\r\na dog,Animals\r\n", ["a cat", "a dog"]),
    ("crlf.jsonl", b'{"prompt": "a cat"}\r\n{"prompt": "a dog"}\r\n', ["a cat", "a dog"]),
    ("crlf.txt", b"a cat\r\na dog\r\n", ["a cat", "a dog"]),
    ("cr-only.txt", b"a cat\ra dog\r", ["a cat", "a dog"]),
    ("blank-first.csv", b"\n\nprompt\nhello\n", ["hello"]),
    ("open-quote.csv", b'prompt\nfine\n"never closed\nmore\n', r"open-quote\.csv, line 3: .*quote"),
    ("ragged.csv", b"prompt,category\na,b\nc,d,e\n", r"ragged\.csv, line 3: expected 2 fields"),
    ("long-header.csv", (",".join(f"c{i}" for i in range(50_000)) + "\n" + "x," * 49_999 + "x\n").encode(),
     r"no 'prompt' column \(found: c0, c1, .*\.\.\.\)$"),
]


def write_case(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, data, expected", CASES, ids=[c[0] for c in CASES])
def test_the_reader_reads_or_names_file_and_line(tmp_path, name, data, expected):
    path = write_case(tmp_path, name, data)
    if isinstance(expected, list):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert [row.prompt for row in read_prompt_file(path)] == expected
        return
    with pytest.raises(EvalkitError) as info:
        read_prompt_file(path)
    message = str(info.value)
    assert re.search(expected, message), message
    assert "\n" not in message and len(message) < 600


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory):
    fake_plugin.install(tmp_path_factory.mktemp("plugin"))


@pytest.mark.parametrize("name, data, expected", CASES, ids=[c[0] for c in CASES])
def test_evalkit_run_on_the_file_ends_cleanly(tmp_path, fake_model, name, data, expected):
    """The whole command: reading, planning, generating, writing index.csv and the manifest, reopening the run."""
    path = write_case(tmp_path, name, data)
    out = tmp_path / "runs"
    outcome = evalkit_cli(["run", "--model", "fake", "--prompts", path, "--images-per-prompt", "1", "--out", out,
                           "--quiet", "--device", "cpu"])
    assert outcome.clean, outcome.describe()
    if isinstance(expected, list):
        assert outcome.code == 0, outcome.describe()
        run = open_run(outcome.stdout.strip().splitlines()[-1])
        assert [r.prompt for r in run.completed_records()] == expected
        again = evalkit_cli(["runs", "show", run.path])
        assert again.code == 0, again.describe()
    else:
        assert outcome.code == 2 and re.search(expected, outcome.error_lines[0]), outcome.describe()
        assert not out.exists() or not any(out.iterdir())  # nothing half-made


def test_duplicate_prompts_are_kept_and_said(tmp_path):
    path = write_case(tmp_path, "dups.csv", b"prompt\nsame\nother\nsame\n")
    with pytest.warns(UserWarning, match=r"dups\.csv: 1 prompt repeats an earlier row \(line 4 = line 2\)"):
        rows = read_prompt_file(path)
    assert [row.index for row in rows] == [0, 1, 2]


def test_a_directory_and_a_fifo_are_not_prompt_files(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    os.mkfifo(tmp_path / "fifo.csv")  # opening it would block: it must be refused unopened
    for name in ("dir.csv", "fifo.csv"):
        with pytest.raises(EvalkitError, match=f"prompt file .*{name} is not a file"):
            read_prompt_file(tmp_path / name)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(3 << 30)  # sparse: 3 GiB claimed, nothing on disk
    with pytest.raises(EvalkitError, match=r"huge\.txt is 3\.0 GiB; prompt files are read whole, at most 1 GiB"):
        read_prompt_file(path)


SUFFIX = st.sampled_from([".csv", ".tsv", ".jsonl", ".txt"])
TEXTISH = st.text(alphabet=st.sampled_from(list('prompt,category\t"{}[]:\n\r\x00 ab\u2028é\\') + ["\ud800"]),
                  max_size=80)


def _check_reads_or_fails_cleanly(path: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = read_prompt_file(path)
    except EvalkitError as error:
        assert "\n" not in str(error) and str(path.name) in str(error)
        return
    assert rows and all(isinstance(r.prompt, str) and r.prompt.strip() and "\x00" not in r.prompt for r in rows)
    for row in rows:  # what a run writes (index.csv, UTF-8) must be writable
        row.prompt.encode("utf-8")
        json.dumps(row.extra, ensure_ascii=False, allow_nan=False).encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=SUFFIX, data=st.binary(max_size=200))
def test_any_bytes_read_or_fail_in_one_line(tmp_path, suffix, data):
    path = tmp_path / f"p{suffix}"
    path.write_bytes(data)
    _check_reads_or_fails_cleanly(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=SUFFIX, text=TEXTISH, header=st.sampled_from(["prompt,category\n", "prompt\tcategory\n", "", "\ufeff"]))
def test_any_text_reads_or_fails_in_one_line(tmp_path, suffix, text, header):
    path = tmp_path / f"p{suffix}"
    path.write_bytes((header + text).encode("utf-8", "surrogatepass"))
    _check_reads_or_fails_cleanly(path)


WORDY = " ".join(["a small red cube to the left of a large blue ball"] * 6)  # 66 words: past every encoder's context


def _manifest(outcome):
    assert outcome.code == 0, outcome.describe()
    return json.loads((Path(outcome.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())


def test_the_built_in_imagen_truncates_long_prompts_visibly(tmp_path):
    """MiniLM reads 32 tokens: longer prompts are cut, counted in the manifest and said once on stderr."""
    path = write_case(tmp_path, "long.txt", f"a red cube\n{WORDY}\n{LONG}\n".encode())
    outcome = evalkit_cli(["run", "--model", "imagen", "--prompts", path, "--opt", "stages=1", "--opt", "steps=1",
                           "--images-per-prompt", "1", "--out", tmp_path / "runs", "--quiet", "--device", "cpu"])
    record = _manifest(outcome)["prompts_truncated"]
    assert record == {"encoder": "minilm", "max_tokens": 32, "count": 2, "prompt_indices": [1, 2]}
    assert "2 of 3 prompts are longer than the text encoder's 32 tokens" in outcome.stderr


def test_the_diffusers_adapter_counts_prompts_its_tokenizer_cuts(tmp_path):
    pytest.importorskip("diffusers")
    from tests.fixtures_tiny_pipeline import make_tiny_pipeline

    pipeline = make_tiny_pipeline(tmp_path / "tiny-sd")  # its CLIP tokenizer reads 16 tokens
    path = write_case(tmp_path, "long.txt", f"a red cube\n{WORDY}\n".encode())
    outcome = evalkit_cli(["run", "--model", "diffusers", "--model-path", pipeline, "--opt", "steps=2", "--prompts",
                           path, "--images-per-prompt", "1", "--threads", "1", "--out", tmp_path / "runs", "--quiet",
                           "--device", "cpu"])
    record = _manifest(outcome)["prompts_truncated"]
    assert record == {"encoder": "CLIPTokenizer", "max_tokens": 16, "count": 1, "prompt_indices": [1]}
