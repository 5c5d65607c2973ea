"""report.html read back with the standard library's HTML parser: every element with its attributes, the text
of each element kind, and the tables as rows of cell texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    classes: tuple[str, ...] = ()


@dataclass
class ParsedPage:
    elements: list[Element] = field(default_factory=list)
    tables: list[tuple[str, list[list[tuple[str, str, bool]]]]] = field(default_factory=list)
    # (table class, rows of (tag, text, bold))

    def find(self, tag: str, cls: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (cls is None or cls in e.classes)]

    def ids(self) -> set[str]:
        return {e.attrs["id"] for e in self.elements if "id" in e.attrs}


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self.stack: list[Element] = []
        self.table: list | None = None
        self.row: list | None = None
        self.cell: list | None = None  # [tag, text parts, bold]

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        element = Element(tag, attributes, classes=tuple(attributes.get("class", "").split()))
        self.page.elements.append(element)
        if tag not in ("img", "meta", "br", "wbr", "link", "input"):
            self.stack.append(element)
        if tag == "table":
            self.table = []
            self.page.tables.append((attributes.get("class", ""), self.table))
        elif tag == "tr" and self.table is not None:
            self.row = []
            self.table.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = [tag, [], False]
        elif tag == "strong" and self.cell is not None:
            self.cell[2] = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append((self.cell[0], "".join(self.cell[1]).strip(), self.cell[2]))
            self.cell = None
        elif tag == "table":
            self.table = None
        while self.stack:
            element = self.stack.pop()
            if element.tag == tag:
                break

    def handle_data(self, data):
        for element in self.stack:
            element.text += data
        if self.cell is not None:
            self.cell[1].append(data)


def parse_page(text: str) -> ParsedPage:
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser.page
