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
That reader writes a plan (:mod:`segmerge.render.textplan`) which depends on the
markup and on which pieces of text are blank, not on the words: the letters of one
template share a few shapes, so a letter shaped like one read before replays that
plan with its own words, and is never read event by event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from html.parser import HTMLParser
from typing import Any

from segmerge.render.textplan import END, LINK, START, TEXT, VOID, plan, replay

_TAG = re.compile(r"<[^<>]*>?")
_CUT = re.compile(r"(<[^>]*>)")  # text and markup, as _fast cuts them
_ODD_IN_LINK = re.compile("[\"&<'\t\n\r\f]")
_CHUNK = 64 * 1024


def _hidden(attrs: dict[str, str | None]) -> bool:
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "hidden" in attrs or attrs.get("aria-hidden") == "true"


_Event = tuple[int, str] | tuple[int, str, dict[str, str | None], bool]


def _read(events: list[_Event]) -> str:
    """What a reader sees, from a parser's events: their plan, replayed."""
    texts: list[str] = []
    steps: list[tuple[Any, ...]] = []
    for event in events:
        if event[0] == TEXT:
            steps.append((TEXT, len(texts)))
            texts.append(event[1])
        else:
            steps.append(event)
    return replay(plan(steps, [not t.strip() for t in texts]), texts, ())


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
        if tag not in VOID:
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
        return ((start,) if name in VOID else (start, (END, name))), None
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


# plans of letters read before, by their shape: the markup (a letter's own link by what
# it does), and which pieces of text are absent, blank or worded
_PLANS: dict[tuple[Any, ...], list[Any]] = {}
_PLANS_MAX = 1024


def _planned(html: str) -> str | None:
    """The text of a letter shaped like one read before: that reading's plan replayed
    with this letter's words (:mod:`segmerge.render.textplan`). None when a piece of its
    markup was never read (:func:`_fast` reads it first) or only :func:`_fast` reads it
    (a comment, script or style, a stray ``<``)."""
    parts = _CUT.split(html)
    if "<" in parts[-1]:
        return None
    known = _KNOWN
    marks: list[Any] = []
    hrefs: list[str] = []
    for raw in parts[1::2]:
        if raw in known:
            marks.append(raw)
        elif (
            raw.startswith('<a href="')
            and raw.endswith('">')
            and len(raw) > 11
            and not _ODD_IN_LINK.search(raw, 9, len(raw) - 2)
        ):  # what _plain_link reads
            href = raw[9:-2]
            shown = href[7:] if href.startswith("mailto:") else href
            marks.append((not href.startswith(("#", "javascript:")), bool(shown.strip())))
            hrefs.append(href)
        else:
            return None
    texts = [unescape(t) if "&" in t else t for t in parts[0::2]]
    state = tuple([(2 if t.strip() else 1) if t else 0 for t in texts])
    key = (tuple(marks), state)
    steps = _PLANS.get(key)
    if steps is None:
        steps = _plan_of(parts, marks, state)
        if steps is None:
            return None
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[key] = steps
    return replay(steps, texts, hrefs)


def _plan_of(parts: list[str], marks: list[Any], state: tuple[int, ...]) -> list[Any] | None:
    """The plan of a new shape of letter; None if it holds script or style."""
    events: list[tuple[Any, ...]] = []
    links = 0
    for i, mark in enumerate(marks):
        if state[i]:
            events.append((TEXT, i))
        if isinstance(mark, tuple):
            events.append((LINK, links, *mark))
            links += 1
            continue
        meaning = _KNOWN[mark]
        if meaning[1] is not None:
            return None
        events.extend(meaning[0])
    if state[-1]:
        events.append((TEXT, len(state) - 1))
    return plan(events, [s != 2 for s in state])


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
        text = _planned(html)
        if text is None:
            text = _fast(html)
        if text is not None:
            if check is not None and html:
                check()
            return text
    return parsed_by_stdlib(html, check)
