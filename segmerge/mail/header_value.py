"""A header value encoded once: RFC 2047 words and folding, at C speed where it can be.

Apart from :mod:`segmerge.mail.message` so that building a message and checking one
(a dry run) share these without one module holding both.
"""

from __future__ import annotations

from typing import Any

# RFC 2047 Q encoding, valid in unstructured text and in a phrase (display name)
_Q = {b: chr(b) for b in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/"}
_Q[0x20] = "_"
_Q_ENCODE = [_Q.get(b, f"={b:02X}") for b in range(256)]
WORD_ROOM = 75 - len("=?utf-8?q??=")


class Value:
    """A header value encoded once, here: ``str()`` is what it says, ``encode`` the wire form.

    compat32 runs every plain ``str`` header through ``email.header.Header`` at each
    serialisation (slow, and it breaks a long URL onto a line of its own); any other
    object it folds by calling ``encode(linesep=...)``.
    """

    __slots__ = ("shown", "words", "sep", "offset")

    def __init__(self, shown: str, words: list[str] | None = None, sep: str = " ") -> None:
        self.shown = shown
        self.words = words if words is not None else shown.split(" ")
        self.sep = sep
        self.offset = 0  # room taken on the first line by "Name: "

    def encode(self, linesep: str = "\n", **_: Any) -> str:
        """Fold between words so that lines stay under 78 characters where possible."""
        lines: list[str] = []
        current = ""
        room = 76 - self.offset
        for word in self.words:
            if current and len(current) + len(self.sep) + len(word) > room:
                lines.append(current + self.sep.rstrip())
                current, room = word, 76
            else:
                current = f"{current}{self.sep}{word}" if current else word
        lines.append(current)
        return (linesep + " ").join(lines)

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return repr(self.shown)

    def __eq__(self, other: object) -> bool:
        return self.shown == str(other)

    def __hash__(self) -> int:
        return hash(self.shown)


def encoded_words(text: str) -> list[str]:
    """RFC 2047 Q-encoded words of at most 75 characters, never splitting a character.

    A word is cut after a space where one is at hand (the space stays inside as "_"),
    so that decoders that keep the blank between two encoded words still read well.
    """
    whole = "".join(map(_Q_ENCODE.__getitem__, text.encode()))
    if len(whole) <= WORD_ROOM:  # most names and subjects: one word, cut nowhere
        return [f"=?utf-8?q?{whole}?="] if whole else []
    words: list[str] = []
    current: list[str] = []
    size = 0
    after_space = 0  # pieces in `current` up to and including its last space
    for ch in text:
        code = ord(ch)
        enc = _Q_ENCODE[code] if code < 128 else "".join(_Q_ENCODE[b] for b in ch.encode())
        if size + len(enc) > WORD_ROOM:
            cut = after_space or len(current)
            words.append("=?utf-8?q?" + "".join(current[:cut]) + "?=")
            current = current[cut:]
            size = sum(len(x) for x in current)
            after_space = 0
        current.append(enc)
        size += len(enc)
        if ch == " ":
            after_space = len(current)
    if current:
        words.append("=?utf-8?q?" + "".join(current) + "?=")
    return words
