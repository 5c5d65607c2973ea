from evalkit.cli.metrics_cmd import format_metric


def test_toyworld_results_print_one_row_per_question_with_chance():
    value = {
        "overall": {"colour": {"accuracy": 0.75, "ci95": [0.5, 0.9], "n": 12}},
        "per_category": {"Counting": {"count": {"accuracy": 0.25, "ci95": [0.1, 0.5], "n": 4}}},
        "chance": {"overall": {"colour": 0.08}, "per_category": {"Counting": {"count": 0.01}}},
    }
    lines = format_metric("toyworld", value)
    assert lines[0] == "toyworld:"
    assert "colour" in lines[1] and "75.0%" in lines[1] and "n=12" in lines[1] and "chance 8.0%" in lines[1]
    assert lines[2] == "toyworld Counting:" and "25.0%" in lines[3] and "chance 1.0%" in lines[3]


def test_clip_and_fid_print_one_row_per_group():
    clip = {"overall": {"mean": 31.234, "ci_low": 30.1, "ci_high": 32.4, "n": 800},
            "per_category": {"Colors": {"mean": 29.0, "ci_low": None, "ci_high": None, "n": 4}}}
    lines = format_metric("clip", clip)
    assert "31.23 [30.10, 32.40]  n=800" in lines[0]
    assert lines[1].startswith("clip Colors") and "29.00  n=4" in lines[1]
    assert "12.3457  n=30000" in format_metric("fid", {"overall": {"fid": 12.345678, "n": 30000}})[0]
