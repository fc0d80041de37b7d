"""The CLI's two consoles, set up once for every command module, and :func:`visible`.

``soft_wrap`` keeps messages and paths on whole lines (a path broken across
lines can be neither pasted nor grepped, and CI's paths are long); tables
still fit the terminal's width.

Contact data is written by strangers: a first name holding ``ESC ] 0 ;`` retitles
the terminal, ``ESC [ 2 J`` clears it, a CR or backspaces overwrite what was
printed before, a bidi override reverses the line. So everything these consoles
print has its control characters made visible (``\\x1b``, ``\\u202e``) before
rich lays it out; a table cell gets the width of what is really shown. Files
(CSV, JSON, ``--out``) are written exactly, not through these consoles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

#: C0 controls but tab and newline, DEL, C1 controls, the bidi embeddings, overrides
#: and isolates (and the marks), the Unicode line and paragraph separators
UNSAFE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
    r"\u202a-\u202e\u2066-\u2069]"
)


def _shown(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every terminal control character written out as an escape, like repr.

    A CRLF line end is a line end, not an attack: it becomes a newline.
    """
    if not UNSAFE.search(text):
        return text
    return UNSAFE.sub(_shown, text.replace("\r\n", "\n"))


class SafeConsole(Console):
    """A rich Console that cannot be made to send a terminal control sequence by data.

    Strings are made :func:`visible` before markup and layout, so widths are right;
    anything still carrying a control character when it is rendered (a ready-made
    ``Text``) is escaped then. Rich's own cursor and style codes are not data and pass.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for seg in super().render(renderable, options):
            if seg.control is None and UNSAFE.search(seg.text):
                yield Segment(visible(seg.text), seg.style)
            else:
                yield seg


out = SafeConsole(soft_wrap=True)
err = SafeConsole(stderr=True, soft_wrap=True)
