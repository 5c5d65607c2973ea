"""report.html: one self-contained file that opens from disk with no network.

- CSS is inline in a <style> element; no script, no external stylesheet, no web font (system font stack).
- Figures (PNG bytes) and image-grid thumbnails are embedded as base64 ``data:`` URIs.
- "Open full size" without JavaScript: browsers refuse top-level navigation to ``data:`` URLs, so each full-size
  image is embedded once, in a hidden overlay element with an id (``img-N``); its thumbnail links to ``#img-N``
  and the CSS ``:target`` rule shows the overlay, whose close link goes back to the thumbnail.
- Every piece of text (titles, prompts, labels, captions, table cells) goes through ``html.escape``: a prompt with
  ``<script>`` shows as typed and is never markup.

Full-size images are embedded as stored when they are PNG or JPEG of at most ``FULL_MAX_BYTES``; anything else
(another format, a larger file) is re-encoded as JPEG (quality 90) at its own resolution, to keep the file
openable. Thumbnails are JPEG (quality 85), longest side ``ImageGrid.thumbnail``.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from evalkit import atomic
from evalkit.errors import EvalkitError
from evalkit.reports.document import (Cell, Figure, GridImage, ImageGrid, KeyValues, Paragraph, Report, Section, Table,
                                      walk)
from evalkit.reports.html_style import CSS

FULL_MAX_BYTES = 512 * 1024  # larger files (1024 px PNGs) are re-encoded: dozens of them must still open
SEP = " \u00b7 "  # between the parts of a grid image's caption; the last part is shown under the thumbnail
_PNG, _JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _header(text: object, dots: bool = False) -> str:
    """A column header with a break opportunity after each '=' (and '.' with ``dots``): a run label
    ``experts=base_expert`` or a stat ``toyworld.binding`` in a narrow column wraps there, not inside a word, and
    only when it must."""
    text = _e(text).replace("=", "=<wbr>")
    return text.replace(".", ".<wbr>") if dots else text


def data_uri(data: bytes) -> str:
    mime = "image/png" if data.startswith(_PNG) else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _jpeg(image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _unreadable(path: Path, error: Exception) -> EvalkitError:
    return EvalkitError(f"{path} is not a readable image ({error.__class__.__name__}: {error}); regenerate it")


def thumbnail_bytes(path: Path, size: int) -> bytes:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((size, size))
            return _jpeg(image, 85)
    except OSError as error:  # PIL.UnidentifiedImageError and truncated files included
        raise _unreadable(path, error) from None


def full_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        if (data.startswith(_PNG) or data.startswith(_JPEG)) and len(data) <= FULL_MAX_BYTES:
            return data
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return _jpeg(image, 90)
    except OSError as error:
        raise _unreadable(path, error) from None


class _Overlays:
    """Full-size images, each embedded once; ``link(path)`` gives the overlay id and the thumbnail's id."""

    def __init__(self) -> None:
        self.ids: dict[Path, tuple[str, str, str]] = {}  # path -> (overlay id, thumb id, caption)

    def link(self, path: Path, caption: str) -> tuple[str, str]:
        if path not in self.ids:
            n = len(self.ids) + 1
            self.ids[path] = (f"img-{n}", f"thumb-{n}", caption)
            return f"img-{n}", f"thumb-{n}"
        return self.ids[path][0], ""  # a second thumbnail of the same file: no second id

    def render(self) -> str:
        parts = []
        for path, (overlay, thumb, caption) in self.ids.items():
            parts.append(f'<div class="overlay" id="{overlay}"><a class="backdrop" href="#{thumb}" '
                         f'aria-label="close"></a><a class="close" href="#{thumb}">\u00d7 close</a><figure>'
                         f'<img src="{data_uri(full_bytes(path))}" alt="{_e(caption)}">'
                         f'<figcaption>{_e(caption)}</figcaption></figure></div>')
        return "\n".join(parts)


def _cell_text(cell: str, bold: bool) -> str:
    """A cell's markup: a ``Cell``'s value (bold when marked) with its detail beneath in smaller type."""
    value, detail = (cell.value, cell.detail) if isinstance(cell, Cell) else (cell, "")
    text = f"<strong>{_e(value)}</strong>" if bold else _e(value)
    return text + (f' <span class="detail">{_e(detail)}</span>' if detail else "")


def _table(table: Table) -> str:
    head = "".join(f"<th>{_header(h, dots=True)}</th>" for h in table.header)
    body = []
    for r, row in enumerate(table.rows):
        cells = []
        for c, cell in enumerate(row):
            text = _cell_text(cell, (r, c) in table.marked)
            classes = [name for name, on in (("num", isinstance(cell, Cell)), ("best", (r, c) in table.marked)) if on]
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<th scope=\"row\">{text}</th>" if c == 0 else f"<td{cls}>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    caption = f"<p class=\"caption\">{_e(table.caption)}</p>" if table.caption else ""
    return (f'<div class="table-wrap"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{caption}")


def _figure(figure: Figure) -> str:
    return (f'<figure class="chart"><img src="{data_uri(figure.png)}" alt="{_e(figure.alt)}">'
            f"<figcaption>{_e(figure.caption)}</figcaption></figure>")


def _grid_head(grid: ImageGrid) -> str:
    """One header row of column labels, under a row of column groups (each sample) when the grid has them."""
    starts = _group_starts(grid)
    start = ' class="group-start"'
    labels = "".join(f'<th{start if c in starts else ""}>{_header(label)}</th>'
                     for c, label in enumerate(grid.column_labels))
    if not grid.column_groups:
        return f"<tr><th>prompt</th>{labels}</tr>"
    groups = "".join(f'<th colspan="{n}" class="group{" group-start" if k else ""}">{_e(label)}</th>'
                     for k, (label, n) in enumerate(grid.column_groups))
    return f'<tr><th rowspan="2">prompt</th>{groups}</tr><tr>{labels}</tr>'


def _group_starts(grid: ImageGrid) -> set[int]:
    """The columns that open a column group after the first (drawn with a rule on their left)."""
    return {sum(n for _, n in grid.column_groups[:k]) for k in range(1, len(grid.column_groups))}


def _grid_cell(grid: ImageGrid, label: str, cell: GridImage | None, start: bool, overlays: _Overlays) -> str:
    cls = ' class="group-start"' if start else ""
    if cell is None:
        return f'<td class="gap{" group-start" if start else ""}">no image</td>'
    overlay, thumb = overlays.link(cell.path, f"{label} \u2014 {cell.caption}" if cell.caption else label)
    id_attr = f' id="{thumb}"' if thumb else ""
    seed = cell.caption.rpartition(SEP)[2]
    return (f'<td{cls}><a href="#{overlay}"{id_attr} title="{_e(cell.caption)}"><img class="thumb" '
            f'src="{data_uri(thumbnail_bytes(cell.path, grid.thumbnail))}" alt="{_e(cell.caption)}">'
            f'</a><div class="seed">{_e(seed)}</div></td>')


def _grid(grid: ImageGrid, overlays: _Overlays) -> str:
    starts = _group_starts(grid)
    rows = []
    for label, cells in zip(grid.row_labels, grid.cells):
        tds = [f'<th scope="row" class="prompt">{_e(label)}</th>']
        tds += [_grid_cell(grid, label, cell, c in starts, overlays) for c, cell in enumerate(cells)]
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return (f'<div class="table-wrap"><table class="grid"><thead>{_grid_head(grid)}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div><p class="caption">{_e(grid.caption)}</p>')


def _key_values(kv: KeyValues) -> str:
    rows = "".join(f"<tr><th scope=\"row\">{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in kv.items)
    caption = f"<p class=\"caption\">{_e(kv.caption)}</p>" if kv.caption else ""
    return f'<div class="table-wrap"><table class="kv"><tbody>{rows}</tbody></table></div>{caption}'


def _block(block: Any, overlays: _Overlays) -> str:
    if isinstance(block, Paragraph):
        return f'<p class="para {_e(block.kind)}">{_e(block.text)}</p>'
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, ImageGrid):
        return _grid(block, overlays)
    if isinstance(block, KeyValues):
        return _key_values(block)
    raise TypeError(f"unknown report block {type(block).__name__}")


def _section(section: Section, depth: int, overlays: _Overlays) -> str:
    level = min(depth + 2, 6)
    inner = "".join(_block(b, overlays) for b in section.blocks)
    children = "".join(_section(child, depth + 1, overlays) for child in section.children)
    return (f'<section id="{_e(section.anchor)}"><h{level}>{_e(section.title)}</h{level}>{inner}{children}'
            f"</section>")


def _toc(sections: tuple[Section, ...]) -> str:
    def items(secs) -> str:
        out = []
        for s in secs:
            sub = f"<ol>{items(s.children)}</ol>" if s.children else ""
            out.append(f'<li><a href="#{_e(s.anchor)}">{_e(s.title)}</a>{sub}</li>')
        return "".join(out)

    return f'<nav class="toc" aria-label="contents"><h2>Contents</h2><ol>{items(sections)}</ol></nav>'


def render_html(report: Report) -> str:
    anchors = [s.anchor for s in walk(report.sections)]
    if len(set(anchors)) != len(anchors):
        raise ValueError("report section anchors must be unique")
    overlays = _Overlays()
    body = "".join(_section(s, 0, overlays) for s in report.sections)
    subtitle = report.data.get("subtitle", "")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(report.title)}</title><style>{CSS}</style></head><body><main>"
            f'<header><h1>{_e(report.title)}</h1><p class="subtitle">{_e(subtitle)}</p></header>'
            f"{_toc(report.sections)}{body}</main>\n{overlays.render()}\n</body></html>\n")


def write_html(report: Report, path: str | Path) -> Path:
    path = Path(path)
    atomic.write_text(path, render_html(report))
    return path
