"""The plain-text part, derived from the HTML when a segment has no `.txt.j2` twin.

Every message carries a text part (spam filters and some readers want one),
but marketers write HTML. The text is what a reader would see: no head, style
or script, nothing hidden with ``display:none``, paragraphs separated by a
blank line, line breaks kept, list items as "- item", and links as
"text (url)" because a plain-text reader cannot click on words.
The standard library's parser is enough and tolerates mail-client HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

_SKIP = frozenset({"head", "style", "script", "title", "template", "noscript"})
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "hr", "pre"}
)
# layout tables hold the paragraphs: a table or a cell only starts a new line
_LINE = frozenset(
    {"div", "table", "tr", "td", "th", "li", "section", "header", "footer", "article", "center"}
)
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "source"})
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_TAG = re.compile(r"<[^<>]*>?")
_CHUNK = 64 * 1024


def _hidden(attrs: dict[str, str | None]) -> bool:
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "hidden" in attrs or attrs.get("aria-hidden") == "true"


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_tag: str | None = None  # the element whose content is being skipped
        self.skip_depth = 0
        self.links: list[tuple[str | None, int]] = []  # href, position of the link text
        self.pre = 0
        self.pending = 0  # newlines owed before the next text: breaks do not pile up

    def _break(self, blank: bool) -> None:
        self.pending = max(self.pending, 2 if blank else 1)

    def _emit(self, text: str) -> None:
        if self.pending:
            if self.out:
                self.out.append("\n" * self.pending)
            self.pending = 0
        self.out.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag and tag not in _VOID:
                self.skip_depth += 1
            return
        a = dict(attrs)
        if tag in _SKIP or (_hidden(a) and tag not in _VOID):
            self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "br":
            self.pending = min(self.pending + 1, 2) if self.out else 0
        elif tag in _PARAGRAPH:
            self._break(blank=True)
        elif tag in _LINE:
            self._break(blank=False)
        if tag == "li":
            self._emit("- ")
        elif tag == "pre":
            self.pre += 1
        elif tag == "a":
            self.links.append((a.get("href"), len(self.out)))
        elif tag == "img" and a.get("alt"):
            self._emit(str(a["alt"]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = _SPACES.sub(" ", "".join(self.out[start:])).strip()
            if href and not href.startswith(("#", "javascript:")):
                shown = href[7:] if href.startswith("mailto:") else href
                if not label:
                    self._emit(shown)
                elif label != shown and label.rstrip("/") != shown.rstrip("/"):
                    self.out.append(f" ({shown})")
        elif tag == "pre" and self.pre:
            self.pre -= 1
        if tag in _PARAGRAPH:
            self._break(blank=True)
        elif tag in _LINE:
            self._break(blank=False)

    def handle_data(self, data: str) -> None:
        if self.skip_tag is not None:
            return
        if self.pre:
            self._emit(data)
        elif data.strip():
            self._emit(_SPACES.sub(" ", data))
        elif not self.pending and self.out:
            self.out.append(" ")


def html_to_text(html: str, check: Callable[[], None] | None = None) -> str:
    """What a reader of the HTML sees, as plain text.

    The HTML is fed in chunks, and ``check`` (the letter's clock) runs between
    them: a letter of a million tags takes the parser seconds. An unclosed
    comment or tag holding the rest of a large letter is shown as text without
    its tags: the stdlib parser would scan it again from each ``<`` (quadratic).
    """
    parser = _TextParser()
    for start in range(0, len(html), _CHUNK):
        parser.feed(html[start : start + _CHUNK])
        if check is not None:
            check()
    if len(parser.rawdata) > _CHUNK:
        tail, parser.rawdata = parser.rawdata, ""
        parser.handle_data(_TAG.sub(" ", tail))
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


parsed_by_stdlib = html_to_text
