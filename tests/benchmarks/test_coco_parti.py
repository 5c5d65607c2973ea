from evalkit.benchmarks.registry import load_benchmark, select_subset


def test_coco_keeps_image_ids_and_normalised_captions(shared_data):
    bench = load_benchmark("coco")
    assert len(bench.rows) == 30000
    ids = [row.extra["image_id"] for row in bench.rows]
    assert len(set(ids)) == 30000 and ids == sorted(ids) and ids[0] == 42
    assert all(row.prompt == row.prompt.strip() and "\n" not in row.prompt for row in bench.rows)


def test_coco_esd_captions_are_stripped_of_stray_whitespace(shared_data):
    bench = load_benchmark("coco-esd")
    assert len(bench.rows) == 30000
    assert all(row.prompt == " ".join(row.prompt.split()) for row in bench.rows)
    assert bench.rows[0].extra["image_id"] == 203564


def test_coco_limit_is_a_deterministic_nested_subset(shared_data):
    rows = load_benchmark("coco").rows
    small, large = select_subset(rows, 100), select_subset(rows, 1000)
    assert len(small) == 100 and small == select_subset(rows, 100)
    assert {r.index for r in small} <= {r.index for r in large}
    assert [r.index for r in small] == sorted(r.index for r in small)


def test_parti_keeps_category_challenge_and_unquoted_text(shared_data):
    bench = load_benchmark("parti")
    assert len(bench.rows) == 1632
    assert len(bench.categories()) == 12
    assert len({row.extra["challenge"] for row in bench.rows}) == 11
    # The file has no quoting: a prompt that starts with a double quote must keep it.
    assert any(row.prompt.startswith('"') for row in bench.rows)


def test_small_drawbench_limits_span_several_categories(shared_data):
    rows = select_subset(load_benchmark("drawbench").rows, 8)
    assert len(rows) == 8 and len({r.category for r in rows}) >= 4
