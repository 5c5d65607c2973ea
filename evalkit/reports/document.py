"""The report as data: sections of typed blocks that the HTML, Markdown and JSON renderers turn into files.

Section builders (metric tables, categories, grids, sweeps, the human study, published numbers, provenance) return
``Section``s and never produce markup themselves; so every piece of text that came from a user, a prompt file or a
plug-in reaches exactly one place that escapes it, per output format. Text fields hold plain text: a prompt with
``<script>`` or ``|`` shows as typed in every format.

Blocks:
  ``Paragraph``  a sentence or two (``kind``: text, note, warning)
  ``Table``      header + rows of plain-text cells; ``marked`` cells (row, column) are the best of their row/column,
                 shown bold; ``caption`` under it. A ``Cell`` (a str) is a number whose detail (interval, n) is
                 shown smaller under its value, so that a column stays narrow
  ``Figure``     a PNG (bytes) with a caption and alt text; ``name`` is its file name beside report.md
  ``ImageGrid``  rows x columns of images on disk (thumbnails that open full size), a label per row and column,
                 optionally groups of columns under one label
  ``KeyValues``  a two-column list (provenance, settings)
A ``Section`` may hold sub-sections (``children``) under its own title; ``data`` of every section and of the report
goes into report.json unchanged (numbers, not text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: str = "text"  # text | note | warning


class Cell(str):
    """A table cell of two parts, equal to its plain text (``"value detail"`` unless ``text`` says otherwise): the
    value on one line, the detail (``[low, high] · n=N``) under it in smaller type (HTML) or after a line break
    (Markdown)."""

    value: str
    detail: str

    def __new__(cls, value: str, detail: str = "", text: str | None = None) -> "Cell":
        cell = super().__new__(cls, text if text is not None else f"{value} {detail}" if detail else value)
        cell.value, cell.detail = value, detail
        return cell


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    marked: frozenset[tuple[int, int]] = frozenset()  # (row, column) cells shown bold: the best value

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"table row has {len(row)} cells, header has {len(self.header)}")


@dataclass(frozen=True)
class Figure:
    png: bytes
    caption: str
    alt: str
    name: str  # file name (no directory) when written beside report.md, e.g. "categories-drawbench.png"


@dataclass(frozen=True)
class GridImage:
    path: Path  # the full-size image on disk
    caption: str = ""  # e.g. "seed 1589828847"


@dataclass(frozen=True)
class ImageGrid:
    caption: str
    column_labels: tuple[str, ...]
    row_labels: tuple[str, ...]  # one per row (a prompt, shown as text)
    cells: tuple[tuple[GridImage | None, ...], ...]  # rows x columns; None: no image there (shown as a gap)
    thumbnail: int = 160  # longest side of the embedded thumbnail, pixels
    column_groups: tuple[tuple[str, int], ...] = ()  # (label, columns) over the column labels, e.g. each sample

    def __post_init__(self) -> None:
        if len(self.cells) != len(self.row_labels):
            raise ValueError("an image grid needs one label per row")
        if self.column_groups and sum(n for _, n in self.column_groups) != len(self.column_labels):
            raise ValueError("an image grid's column groups must span its columns")
        for row in self.cells:
            if len(row) != len(self.column_labels):
                raise ValueError("every image-grid row needs one cell per column")


@dataclass(frozen=True)
class KeyValues:
    items: tuple[tuple[str, str], ...]
    caption: str = ""


Block = Union[Paragraph, Table, Figure, ImageGrid, KeyValues]


@dataclass(frozen=True)
class Section:
    title: str
    anchor: str  # a stable id: [a-z0-9-]+, unique in the report (HTML ids, Markdown links)
    blocks: tuple[Block, ...] = ()
    children: tuple["Section", ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    title: str
    sections: tuple[Section, ...]
    data: dict[str, Any] = field(default_factory=dict)  # report-level facts for report.json (runs, generated at)


def walk(sections: Sequence[Section]):
    """Every section depth-first, parents before children."""
    for section in sections:
        yield section
        yield from walk(section.children)
