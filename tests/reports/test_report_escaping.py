"""Prompt text is data, not markup: a prompt file's `<script>`, `|`, `&`, `*` and HTML tags show as typed in
report.html (no element made of them) and report.md (escaped, table rows intact)."""

from __future__ import annotations

import re

import pytest

from evalkit.reports.report import build_report, write_report
from tests.reports.report_html import parse_page
from tests.reports.report_runs import CATEGORIES, PIPE_PROMPT, SCRIPT_PROMPT, toy_runs  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def written(toy_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("escaped")
    paths = write_report(build_report([toy_runs.escaped], title="<b>title</b> | & *"), out)
    return paths


def test_html_shows_prompts_as_text(written):
    text = written["html"].read_text(encoding="utf-8")
    page = parse_page(text)
    assert not page.find("script") and not page.find("i") and not [e for e in page.find("b")]
    prompts = [e.text.strip() for e in page.find("th", "prompt")]
    assert SCRIPT_PROMPT in prompts and PIPE_PROMPT in prompts  # the parser's text is the prompt, as typed
    headings = [e.text for e in page.elements if e.tag in ("h2", "h3", "h4")]
    assert CATEGORIES[0] in headings and CATEGORIES[2] in headings
    assert page.find("title")[0].text == "<b>title</b> | & *"
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    # category labels reach the per-category table (KID per category) as text too
    cells = [cell for _, rows in page.tables for row in rows for _, cell, _ in row]
    assert CATEGORIES[0] in cells


def test_markdown_escapes_prompts(written):
    text = written["markdown"].read_text(encoding="utf-8")
    assert "<script>" not in text and "<i>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    rows = [line for line in text.splitlines() if line.startswith("| a &#124; b")]
    assert len(rows) == 1
    # prompt, sample 0, sample 1: exactly 3 cells, the prompt's own pipe escaped
    assert rows[0].count("|") == 4 and "&amp; c &lt;b&gt;bold&lt;/b&gt; \\*stars\\*" in rows[0]
    assert re.search(r"^### Cat &lt;i&gt;one&lt;/i&gt;$", text, re.MULTILINE)
    assert text.startswith("# &lt;b&gt;title&lt;/b&gt; &#124; &amp; \\*\n")
