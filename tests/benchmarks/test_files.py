import json

import pytest

from evalkit.benchmarks.files import read_prompt_file
from evalkit.benchmarks.registry import load_benchmark
from evalkit.errors import EvalkitError

TRICKY = 'A sign that says "Hi, there", in Schönhausen\'s café'


def test_csv_with_commas_quotes_and_non_ascii_round_trips(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('Prompt,CATEGORY,note\n"A sign that says ""Hi, there"", in Schönhausen\'s café",Text,x\nplain,Other,y\n',
                    encoding="utf-8")
    rows = read_prompt_file(path)
    assert rows[0].prompt == TRICKY and rows[0].category == "Text" and rows[0].extra == {"note": "x"}
    assert [r.index for r in rows] == [0, 1]


def test_jsonl_txt_and_tsv_are_read(tmp_path):
    (tmp_path / "p.jsonl").write_text(json.dumps({"Prompt": TRICKY, "category": "Text"}) + "\n\n")
    (tmp_path / "p.txt").write_text("first prompt\n\n  second prompt  \n")
    (tmp_path / "p.tsv").write_text('prompt\tcategory\n"quoted" start\tA\n')
    assert read_prompt_file(tmp_path / "p.jsonl")[0].prompt == TRICKY
    assert [r.prompt for r in read_prompt_file(tmp_path / "p.txt")] == ["first prompt", "second prompt"]
    assert read_prompt_file(tmp_path / "p.tsv")[0].prompt == '"quoted" start'


def test_the_file_benchmark_hash_depends_on_content_not_format(tmp_path):
    (tmp_path / "a.csv").write_text("prompt,category\nx,y\n")
    (tmp_path / "b.jsonl").write_text('{"prompt": "x", "category": "y"}\n')
    assert load_benchmark("file", str(tmp_path / "a.csv")).content_hash == load_benchmark("file", str(tmp_path / "b.jsonl")).content_hash


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "does not exist"),
        ("empty.csv", "", "is empty"),
        ("nocol.csv", "text,category\na,b\n", "no 'prompt' column \\(found: category, text\\)"),
        ("ragged.csv", "prompt,category\na,b\nc,d,e\n", "line 3: expected 2 fields"),
        ("blank.csv", "prompt,category\n  ,b\n", "line 2: empty or missing prompt"),
        ("bad.jsonl", '{"prompt": "a"}\n{"prompt": \n', "line 2: not valid JSON"),
        ("list.jsonl", '["a"]\n', "line 1: expected a JSON object"),
        ("header.csv", "prompt,category\n", "no rows"),
        ("p.xlsx", "x", "unsupported type .xlsx"),
    ],
)
def test_bad_prompt_files_give_one_clear_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(EvalkitError, match=message) as info:
        read_prompt_file(path)
    assert "\n" not in str(info.value)


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("prompt\nok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(EvalkitError, match="line 3: not valid UTF-8"):
        read_prompt_file(path)


def test_unknown_benchmark_lists_the_known_ones():
    with pytest.raises(EvalkitError, match="unknown benchmark 'drawbnch'; known: coco, coco-esd, drawbench"):
        load_benchmark("drawbnch")
