"""What a reader of a letter's HTML sees, worked out once per shape of letter.

The reading (:func:`plan`) walks a parser's events: paragraphs, line breaks, list
items, links shown as "text (url)", hidden and skipped elements. What it does
depends on the markup, on which pieces of text are blank and on which links lead
somewhere, never on the words themselves: so it is written down as a plan (which
line breaks, which piece of text, where a link's address goes) that
:func:`replay` fills with one letter's words. Letters of one template share their
markup, so :mod:`segmerge.render.textpart` keeps the plans, and a letter's text
part costs a replay instead of a reading (at 100k, ~25-40 µs of a ~90 µs letter).

A plan is a list of steps, each appending one string at :func:`replay`:

- ``str``: itself (line breaks, a space, "- ", an image's alt text, a link's fixed address);
- ``int`` i: text piece i, its line breaks made spaces (all spaces are flattened at the end);
- ``(i,)``: text piece i as it is (inside ``<pre>``);
- ``(start, href)``: after a link's words (steps ``start`` onwards), " (address)" unless
  they say it already (``href``: the address, or the number of the letter's own one);
- ``(k, None, None)``: the letter's own address k, for a link without words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

SKIP = frozenset({"head", "style", "script", "title", "template", "noscript"})
PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "hr", "pre"}
)
# layout tables hold the paragraphs: a table or a cell only starts a new line
LINE = frozenset(
    {"div", "table", "tr", "td", "th", "li", "section", "header", "footer", "article", "center"}
)
VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "source"})
SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")

# A reading's events: (TEXT, i) text piece i; (START, name, attributes, hidden);
# (END, name); (LINK, k, leads, shows): ``<a href>`` with the letter's own address k,
# ``leads``: it is not "#..." nor "javascript:", ``shows``: what it shows is not blank.
TEXT, START, END, LINK = 0, 1, 2, 3
Step = Any  # str | int | tuple[int] | tuple[int, str | int] | tuple[int, None, None]


def plan(events: Sequence[tuple[Any, ...]], blank: Sequence[bool]) -> list[Step]:
    """The steps that read ``events`` (``blank[i]``: text piece i has no words).

    One loop over plain locals: it runs for every event of every new shape of letter.
    ``pending`` counts the newlines owed before the next text, so breaks do not pile up;
    ``words[j]``: step j writes something other than spaces (a link's words are empty
    when none of its steps does).
    """
    steps: list[Step] = []
    words: list[bool] = []
    skip_tag: str | None = None  # the element whose content is being skipped
    skip_depth = pre = pending = 0
    links: list[tuple[Any, int]] = []  # href (str, None or (k, leads, shows)), first step

    def emit(step: Step, has_words: bool) -> None:
        nonlocal pending
        if pending and steps:
            steps.append("\n" * pending)
            words.append(False)
        steps.append(step)
        words.append(has_words)
        pending = 0

    for event in events:
        kind = event[0]
        if kind == TEXT:
            if skip_tag is not None:
                continue
            i = event[1]
            if pre:
                emit((i,), not blank[i])
            elif not blank[i]:
                emit(i, True)
            elif not pending and steps:
                steps.append(" ")
                words.append(False)
            continue
        name = "a" if kind == LINK else event[1]
        if kind != END:
            if skip_tag is not None:
                if name == skip_tag and name not in VOID:
                    skip_depth += 1
                continue
            if name in SKIP or (kind == START and event[3] and name not in VOID):
                skip_tag, skip_depth = name, 1
                continue
            if name == "br":
                pending = min(pending + 1, 2) if steps else 0
            elif name in PARAGRAPH:
                pending = max(pending, 2)
            elif name in LINE:
                pending = max(pending, 1)
            if name == "li":
                emit("- ", True)
            elif name == "pre":
                pre += 1
            elif kind == LINK:
                links.append((event[1:], len(steps)))
            elif name == "a":
                links.append((event[2].get("href"), len(steps)))
            elif name == "img" and (alt := event[2].get("alt")):
                emit(str(alt), bool(str(alt).strip()))
        else:
            if skip_tag is not None:
                if name == skip_tag:
                    skip_depth -= 1
                    if skip_depth == 0:
                        skip_tag = None
                continue
            if name == "a" and links:
                href, start = links.pop()
                labelled = any(words[start:])
                if isinstance(href, tuple):  # the letter's own address
                    k, leads, shows = href
                    if leads and not labelled:
                        emit((k, None, None), shows)
                    elif leads:
                        steps.append((start, k))
                        words.append(False)  # its words are the link's: never alone
                elif href and not href.startswith(("#", "javascript:")):
                    shown = href[7:] if href.startswith("mailto:") else href
                    if not labelled:
                        emit(shown, bool(shown.strip()))
                    else:
                        steps.append((start, href))
                        words.append(False)
            elif name == "pre" and pre:
                pre -= 1
            if name in PARAGRAPH:
                pending = max(pending, 2)
            elif name in LINE:
                pending = max(pending, 1)
    return steps


def replay(steps: list[Step], texts: Sequence[str], hrefs: Sequence[str]) -> str:
    """One letter's text: its ``texts`` pieces and own ``hrefs`` put where ``steps`` say."""
    out: list[str] = []
    add = out.append
    for step in steps:
        t = type(step)
        if t is str:
            add(step)
        elif t is int:
            s = texts[step]
            add(s.replace("\n", " ") if "\n" in s else s)  # other spaces: flattened below
        elif len(step) == 1:
            add(texts[step[0]])
        elif len(step) == 2:
            start, href = step
            if type(href) is int:
                href = hrefs[href]
            shown = href[7:] if href.startswith("mailto:") else href
            label = "".join(out[start:]).strip()
            if not label.isprintable() or "  " in label:  # else SPACES leaves it as it is
                label = SPACES.sub(" ", label).strip()
            same = label == shown or label.rstrip("/") == shown.rstrip("/")
            add("" if same else f" ({shown})")
        else:
            href = hrefs[step[0]]
            add(href[7:] if href.startswith("mailto:") else href)
    text = "\n".join([" ".join(line.split()) for line in "".join(out).split("\n")])
    return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()
