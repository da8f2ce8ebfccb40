"""A report as a document: sections of tables, figures, galleries and paragraphs, rendered as Markdown
(figures linked) or as one self-contained HTML file (figures inlined as base64 data URIs, CSS included)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Sequence

CSS = """body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child,.text td{text-align:left}img{max-width:100%}figcaption{font-size:.85em;color:#555}
.gallery{display:flex;flex-wrap:wrap;gap:.5em}.gallery figure{width:15em;margin:0}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em;font-weight:bold}"""


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``numeric`` right-aligns every column but the first."""

    header: list[str]
    rows: list[list[str]]
    numeric: bool = True

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        align = "---:" if self.numeric else "---"
        return "\n".join([line(self.header), line(["---"] + [align] * (len(self.header) - 1)),
                          *map(line, self.rows)])

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in self.rows)
        opening = "<table>" if self.numeric else '<table class="text">'
        return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class Image:
    """A figure: its file under ``report_files/``, a caption and the PNG bytes (inlined in HTML)."""

    file: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Gallery:
    """Small images side by side (overlays), each with its caption."""

    images: list[Image]


Block = Table | Image | Gallery | str  # a str is a paragraph
Section = tuple[str, list[Block]]


def _figure_html(image: Image) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{html.escape(image.caption)}\">"
            f"<figcaption>{html.escape(image.caption)}</figcaption></figure>")


def to_markdown(title: str, sections: Sequence[Section], banner: str | None = None) -> str:
    parts = [f"# {title}"] + ([f"> **{banner}**"] if banner else [])
    for heading, blocks in sections:
        parts.append(f"## {heading}")
        for block in blocks:
            if isinstance(block, Table):
                parts.append(block.markdown())
            elif isinstance(block, Image):
                parts.append(f"![{block.caption}]({block.file})")
            elif isinstance(block, Gallery):
                parts.append("\n".join(f"![{image.caption}]({image.file}) {image.caption}  "
                                       for image in block.images))
            else:
                parts.append(block)
    return "\n\n".join(parts) + "\n"


def to_html(title: str, sections: Sequence[Section], banner: str | None = None) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if banner:
        parts.append(f"<p class=\"banner\">{html.escape(banner)}</p>")
    for heading, blocks in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, Table):
                parts.append(block.html())
            elif isinstance(block, Image):
                parts.append(_figure_html(block))
            elif isinstance(block, Gallery):
                parts.append("<div class=\"gallery\">" + "".join(map(_figure_html, block.images)) + "</div>")
            else:
                parts.append(f"<p>{html.escape(block)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
