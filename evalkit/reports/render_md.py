"""report.md: the report as GitHub-flavoured Markdown, with its images beside it.

    DIR/report.md
    DIR/figures/NAME.png               every Figure, by its ``name``
    DIR/images/full/KEY.EXT            every image of a grid, copied as stored
    DIR/images/thumbs/KEY.jpg          its thumbnail, which links to the full-size copy

KEY is a short digest of the source path plus the source file name, so the same image is copied once and two
runs' ``00000_00.png`` do not collide. Every piece of text goes through evalkit.reports.tables.md_escape (a
prompt with ``<script>`` or ``|`` shows as typed); the only markup written is the report's own (headings, tables,
links, bold, a ``<br>`` between a number and its interval in a table cell, and one ``<a id>`` per section so the
table of contents links work). Nothing is written outside ``out_dir``: figure names must be plain file names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from evalkit import atomic
from evalkit.reports.document import Cell, Figure, ImageGrid, KeyValues, Paragraph, Report, Section, Table, walk
from evalkit.reports.render_html import thumbnail_bytes
from evalkit.reports.tables import md_escape, md_table

FIGURES, IMAGES = "figures", "images"
_PREFIX = {"note": "**Note:** ", "warning": "**Warning:** ", "text": ""}


def _plain_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"figure name {name!r} is not a plain file name")
    return name


class _Images:
    """Copies grid images (once each) and makes their thumbnails under DIR/images."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.done: dict[Path, tuple[str, str]] = {}

    def link(self, path: Path, size: int) -> tuple[str, str]:
        """(thumbnail, full-size) paths relative to DIR, written on first use."""
        if path not in self.done:
            key = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:10] + "-" + path.stem
            suffix = path.suffix.lower() if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") else ".png"
            full = f"{IMAGES}/full/{key}{suffix}"
            thumb = f"{IMAGES}/thumbs/{key}.jpg"
            atomic.write_bytes(self.out_dir / full, path.read_bytes())
            atomic.write_bytes(self.out_dir / thumb, thumbnail_bytes(path, size))
            self.done[path] = (thumb, full)
        return self.done[path]


def _cell(cell: str, bold: bool) -> str:
    """A ``Cell``'s value (bold when marked), a line break and its detail: a narrow column on GitHub too."""
    value, detail = (cell.value, cell.detail) if isinstance(cell, Cell) else (cell, "")
    text = f"**{md_escape(value)}**" if bold else md_escape(value)
    return f"{text}<br>{md_escape(detail)}" if detail else text


def _table(table: Table) -> list[str]:
    rows = [[_cell(cell, (r, c) in table.marked) for c, cell in enumerate(row)] for r, row in enumerate(table.rows)]
    lines = md_table([md_escape(h) for h in table.header], rows, escape=False)
    return lines + ([""] + [f"*{md_escape(table.caption)}*"] if table.caption else [])


def _figure(figure: Figure, out_dir: Path) -> list[str]:
    name = _plain_name(figure.name)
    atomic.write_bytes(out_dir / FIGURES / name, figure.png)
    return [f"![{md_escape(figure.alt)}]({FIGURES}/{name})", "", f"*{md_escape(figure.caption)}*"]


def _grid(grid: ImageGrid, images: _Images) -> list[str]:
    rows = []
    for label, cells in zip(grid.row_labels, grid.cells):
        row = [md_escape(label)]
        for cell in cells:
            if cell is None:
                row.append("*no image*")
                continue
            thumb, full = images.link(cell.path, grid.thumbnail)
            row.append(f"[![{md_escape(cell.caption)}]({thumb})]({full})")
        rows.append(row)
    groups = [label for label, n in grid.column_groups for _ in range(n)]
    header = ["prompt", *(f"{md_escape(c)} \u00b7 {md_escape(g)}" if g else md_escape(c)
                          for c, g in zip(grid.column_labels, groups or [""] * len(grid.column_labels)))]
    return md_table(header, rows, escape=False) + ["", f"*{md_escape(grid.caption)}*"]


def _key_values(kv: KeyValues) -> list[str]:
    lines = md_table(["field", "value"], [[md_escape(k), md_escape(v)] for k, v in kv.items], escape=False)
    return lines + ([""] + [f"*{md_escape(kv.caption)}*"] if kv.caption else [])


def _block(block: Any, out_dir: Path, images: _Images) -> list[str]:
    if isinstance(block, Paragraph):
        return [_PREFIX.get(block.kind, "") + md_escape(block.text)]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block, out_dir)
    if isinstance(block, ImageGrid):
        return _grid(block, images)
    if isinstance(block, KeyValues):
        return _key_values(block)
    raise TypeError(f"unknown report block {type(block).__name__}")


def _section(section: Section, depth: int, out_dir: Path, images: _Images) -> list[str]:
    lines = [f'<a id="{section.anchor}"></a>', "", f"{'#' * min(depth + 2, 6)} {md_escape(section.title)}", ""]
    for block in section.blocks:
        lines += _block(block, out_dir, images) + [""]
    for child in section.children:
        lines += _section(child, depth + 1, out_dir, images)
    return lines


def _toc(sections, depth: int = 0) -> list[str]:
    lines = []
    for s in sections:
        lines.append(f"{'  ' * depth}- [{md_escape(s.title)}](#{s.anchor})")
        lines += _toc(s.children, depth + 1)
    return lines


def render_markdown(report: Report, out_dir: Path) -> str:
    """The Markdown text; writes the figures and grid images it links to under ``out_dir``."""
    for section in walk(report.sections):
        if not section.anchor or any(ch not in "abcdefghijklmnopqrstuvwxyz0123456789-" for ch in section.anchor):
            raise ValueError(f"section anchor {section.anchor!r} is not [a-z0-9-]+")
    images = _Images(out_dir)
    lines = [f"# {md_escape(report.title)}", ""]
    if report.data.get("subtitle"):
        lines += [md_escape(report.data["subtitle"]), ""]
    lines += ["**Contents**", "", *_toc(report.sections), ""]
    for section in report.sections:
        lines += _section(section, 0, out_dir, images)
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(report: Report, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    path = out_dir / "report.md"
    atomic.write_text(path, render_markdown(report, out_dir))
    return path
