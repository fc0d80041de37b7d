"""The plain-text part, derived from the HTML when a segment has no `.txt.j2` twin.

Every message carries a text part (spam filters and some readers want one),
but marketers write HTML. The text is what a reader would see: no head, style
or script, nothing hidden with ``display:none``, paragraphs separated by a
blank line, line breaks kept, list items as "- item", and links as
"text (url)" because a plain-text reader cannot click on words.

`validate` builds it for every contact, and the standard library's parser
spent most of that time in Python code per tag. So the HTML our templates
produce (well-formed tags with quoted or plain attribute values, comments, a
doctype) is cut at each ``<`` and ``>``, and what each distinct piece of
markup means is worked out once and remembered: a layout repeats the same few
dozen tags in every letter. Anything else (a stray ``<``, a ``>`` inside a
quoted value, a processing instruction) goes to the standard library's
parser, which tolerates mail-client HTML; both feed the same reader, so the
text is the same either way (tests/test_textpart.py, tests/test_letters_golden.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
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
_BLANK_LINES = re.compile(r"\n{3,}")
_CHUNK = 64 * 1024


def _hidden(attrs: dict[str, str | None]) -> bool:
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "hidden" in attrs or attrs.get("aria-hidden") == "true"


# A parser's events, read by :func:`_read`: (TEXT, text), (START, name, attributes, hidden),
# (END, name); ``hidden`` is ``_hidden(attributes)``, worked out once per distinct tag.
TEXT, START, END = 0, 1, 2
_Event = tuple[int, str] | tuple[int, str, dict[str, str | None], bool]


def _emit(out: list[str], pending: int, text: str) -> int:
    """Append text after the line breaks owed; what is owed after it (nothing)."""
    if pending and out:
        out.append("\n" * pending)
    out.append(text)
    return 0


def _read(events: list[_Event]) -> str:
    """What a reader sees, from a parser's events.

    One loop over plain locals: it runs for every event of every letter.
    ``pending`` counts the newlines owed before the next text, so breaks do not pile up.
    """
    out: list[str] = []
    skip_tag: str | None = None  # the element whose content is being skipped
    skip_depth = pre = pending = 0
    links: list[tuple[str | None, int]] = []  # href, position of the link text
    for event in events:
        kind, name = event[0], event[1]
        if kind == TEXT:
            if skip_tag is not None:
                continue
            if pre:
                pending = _emit(out, pending, name)
            elif name.strip():  # printable text has no line break to flatten (see below)
                text = name if name.isprintable() else _SPACES.sub(" ", name)
                pending = _emit(out, pending, text)
            elif not pending and out:
                out.append(" ")
        elif kind == START:
            if skip_tag is not None:
                if name == skip_tag and name not in _VOID:
                    skip_depth += 1
                continue
            if name in _SKIP or (event[3] and name not in _VOID):  # type: ignore[misc]
                skip_tag, skip_depth = name, 1
                continue
            if name == "br":
                pending = min(pending + 1, 2) if out else 0
            elif name in _PARAGRAPH:
                pending = max(pending, 2)
            elif name in _LINE:
                pending = max(pending, 1)
            if name == "li":
                pending = _emit(out, pending, "- ")
            elif name == "pre":
                pre += 1
            elif name == "a":
                links.append((event[2].get("href"), len(out)))  # type: ignore[misc]
            elif name == "img" and (alt := event[2].get("alt")):  # type: ignore[misc]
                pending = _emit(out, pending, str(alt))
        else:
            if skip_tag is not None:
                if name == skip_tag:
                    skip_depth -= 1
                    if skip_depth == 0:
                        skip_tag = None
                continue
            if name == "a" and links:
                href, start = links.pop()
                label = _SPACES.sub(" ", "".join(out[start:])).strip()
                if href and not href.startswith(("#", "javascript:")):
                    shown = href[7:] if href.startswith("mailto:") else href
                    if not label:
                        pending = _emit(out, pending, shown)
                    elif label != shown and label.rstrip("/") != shown.rstrip("/"):
                        out.append(f" ({shown})")
            elif name == "pre" and pre:
                pre -= 1
            if name in _PARAGRAPH:
                pending = max(pending, 2)
            elif name in _LINE:
                pending = max(pending, 1)
    text = "\n".join([" ".join(line.split()) for line in "".join(out).split("\n")])
    return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()


class _StdlibParser(HTMLParser):
    """The standard library's parser, noting its events for :func:`_read`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[_Event] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.events.append((START, tag, a, _hidden(a)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.events.append((END, tag))

    def handle_endtag(self, tag: str) -> None:
        self.events.append((END, tag))

    def handle_data(self, data: str) -> None:
        self.events.append((TEXT, data))


# -- the fast path: what the stdlib parser does, for HTML it reads without surprises ---------
# A piece of markup runs from a "<" to the first ">" (a quoted value holding ">" falls back).
# Each pattern accepts only markup the stdlib parser reads the same way (its tag name ends
# at the same character, an attribute value where its own does), and the stdlib reads a
# tag from its own text alone: so what one tag means is worked out once and remembered.
_WS = r"[ \t\n\r\f]"
_NAME = r"[a-zA-Z_:][-a-zA-Z0-9_:.]*"
_VALUE = r"""(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+(?=[ \t\n\r\f>]))"""
_START = re.compile(
    rf"<([a-zA-Z][a-zA-Z0-9-]*)((?:{_WS}+{_NAME}(?:{_WS}*={_WS}*{_VALUE})?)*){_WS}*(/?)>"
)
_ATTR = re.compile(rf"({_NAME})(?:{_WS}*={_WS}*({_VALUE}))?")
_END = re.compile(rf"</{_WS}*([a-zA-Z][-.a-zA-Z0-9:_]*){_WS}*>")
_DOCTYPE = re.compile(r"<![dD][oO][cC][tT][yY][pP][eE][^>]*>")
_COMMENT_END = re.compile(r"--\s*>")  # a comment ends where the stdlib's does
# script and style hold raw text up to their end tag (the stdlib's "CDATA content")
_RAW_END = {t: re.compile(rf"</\s*{t}\s*>", re.IGNORECASE) for t in ("script", "style")}

# what a piece of markup means: its events, and for script or style, where their raw text ends
_Markup = tuple[tuple[_Event, ...], "re.Pattern[str] | None"]
_KNOWN: dict[str, _Markup] = {}
_KNOWN_MAX = 4096  # pieces remembered; links carrying a contact's token vary


def _meaning(raw: str) -> _Markup | None:
    """What a piece of markup means, as the stdlib parser reads it; None: not for us."""
    if m := _START.fullmatch(raw):
        a: dict[str, str | None] = {}
        for attr in _ATTR.finditer(raw, 1 + len(m.group(1))):
            key, value = attr.group(1, 2)
            if value is not None:
                if value[:1] in ("'", '"'):
                    value = value[1:-1]
                if value:
                    value = unescape(value)
            a[key.lower()] = value
        name = m.group(1).lower()
        start: _Event = (START, name, a, _hidden(a))
        if m.group(3) != "/":
            return (start,), _RAW_END.get(name)
        return ((start,) if name in _VOID else (start, (END, name))), None
    if m := _END.fullmatch(raw):
        return ((END, m.group(1).lower()),), None
    if _DOCTYPE.fullmatch(raw):
        return (), None
    return None


def _plain_link(raw: str) -> _Markup | None:
    """``<a href="...">`` with a plain value, as :func:`_meaning` reads it, without its
    patterns and not remembered: each letter's link carries its contact's token."""
    href = raw[9:-2]
    if raw[-2:] != '">' or any(c in href for c in "\"&<'\t\n\r\f") or not href:
        return None
    return ((START, "a", {"href": href}, False),), None


def _fast(html: str) -> str | None:
    """The text, or None when the HTML holds something only the stdlib parser reads."""
    events: list[_Event] = []
    add, extend, known, find, pos = events.append, events.extend, _KNOWN, html.find, 0
    while True:
        j = find("<", pos)
        if j < 0:
            if pos < len(html):
                add((TEXT, unescape(html[pos:])))
            return _read(events)
        if j > pos:
            text = html[pos:j]
            add((TEXT, unescape(text) if "&" in text else text))
        k = find(">", j)
        if k < 0:
            return None
        raw = html[j : k + 1]
        meaning = known.get(raw)
        if meaning is None and raw.startswith('<a href="'):
            meaning = _plain_link(raw)
        if meaning is None:
            if raw.startswith("<!--"):
                end = _COMMENT_END.search(html, j + 4)
                if end is None:
                    return None
                pos = end.end()
                continue
            meaning = _meaning(raw)
            if meaning is None:
                return None
            if len(known) >= _KNOWN_MAX:
                known.clear()
            known[raw] = meaning
        pos = k + 1
        extend(meaning[0])
        if meaning[1] is not None:  # script or style: raw text up to its end tag
            found = meaning[1].search(html, pos)
            if found is None:
                return None
            if found.start() > pos:
                add((TEXT, html[pos : found.start()]))
            pos = found.start()


def parsed_by_stdlib(html: str, check: Callable[[], None] | None = None) -> str:
    """The text as the standard library's parser reads the HTML: for what the fast path
    does not read, for letters over 64 KiB, and as the fast path's reference in tests.

    The HTML is fed in chunks, and ``check`` (the letter's clock) runs between
    them: a letter of a million tags takes the parser seconds. An unclosed
    comment or tag holding the rest of a large letter is shown as text without
    its tags: the stdlib parser would scan it again from each ``<`` (quadratic).
    """
    parser = _StdlibParser()
    for start in range(0, len(html), _CHUNK):
        parser.feed(html[start : start + _CHUNK])
        if check is not None:
            check()
    if len(parser.rawdata) > _CHUNK:
        tail, parser.rawdata = parser.rawdata, ""
        parser.handle_data(_TAG.sub(" ", tail))
    parser.close()
    return _read(parser.events)


def html_to_text(html: str, check: Callable[[], None] | None = None) -> str:
    """What a reader of the HTML sees, as plain text (``check``: the letter's clock)."""
    if len(html) <= _CHUNK:  # one chunk: the stdlib parser would read it in one go
        text = _fast(html)
        if text is not None:
            if check is not None and html:
                check()
            return text
    return parsed_by_stdlib(html, check)
