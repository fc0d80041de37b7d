"""A dry run's letters are checked where they are rendered (segmerge.run.letter_check):
in a render worker, after the check crossed a pickle, the same letters must be refused
with the same errors as a send refuses them, and the others pass."""

from __future__ import annotations

import pickle

import pytest

from segmerge.errors import TemplateError
from segmerge.ledger.keys import send_key
from segmerge.mail.message import MessageError, build_message
from segmerge.render.rendered import Rendered
from segmerge.run.letter_check import Headers, LetterCheck

RUN = "profils@2026-12-01"
HEADERS = Headers("profils", "Boutique <bonjour@example.org>", None, "example.org", None)


def _letter(subject: str = "Bonjour", from_addr: str | None = None) -> Rendered:
    return Rendered(subject, "", "<p>Bonjour</p>", "Bonjour", from_addr, None, "a.html.j2")


def _sent_or_refused(r: Rendered | TemplateError, cid: str, to: str, first: object) -> str | None:
    """What building the message a send builds says of the letter."""
    url = f"https://example.org/stop?token={cid}"
    try:
        if isinstance(r, TemplateError):
            raise r
        contact = {"first_name": first, "last_name": None}
        build_message(r, **HEADERS.args(r, to, contact, send_key(RUN, cid), url, "vip", None))
    except (TemplateError, MessageError) as exc:
        return f"{cid}: {exc}"
    return None


def test_a_checked_chunk_refuses_what_a_send_refuses_with_the_same_words_even_pickled() -> None:
    rows = [
        (_letter(), "c1", "anne@example.org", "Anne"),
        (_letter(), "c2", "not an address", "Bob"),  # the contact's address
        (TemplateError("contact c3: 'x' is undefined"), "c3", "c3@example.org", None),
        (_letter(from_addr="Shop <shop@@example.org>"), "c4", "d@example.org", None),  # templated
        (_letter("Hé, Ève\r\nBcc: all@example.org"), "c5", "e@example.org", "Ève"),  # flattened
        (_letter(), "c6", "f@bad_domain", "Fanny"),
    ]
    letters, ids, tos, first = (list(c) for c in zip(*rows, strict=True))
    n = len(rows)
    urls = [f"https://example.org/stop?token={c}" for c in ids]
    check = LetterCheck(
        HEADERS, RUN, None, ids, tos, first, [None] * n, urls, ["vip"] * n, [None] * n
    )
    expected = [_sent_or_refused(*row) for row in rows]
    assert [v is None for v in expected] == [True, False, False, False, True, False]

    in_worker = pickle.loads(pickle.dumps(check.part(1, n)))  # what a render worker gets
    assert check.part(0, 1)(letters[:1]) + in_worker(letters[1:]) == expected
    assert check(letters) == expected


def test_a_check_given_a_part_of_its_chunk_checks_that_part_only() -> None:
    check = LetterCheck(
        HEADERS,
        RUN,
        None,
        ["a", "b"],
        ["a@x.org", "b@x.org"],
        [None] * 2,
        [None] * 2,
        ["https://x.org/a", "https://x.org/b"],
        ["vip"] * 2,
        [None] * 2,
    )
    with pytest.raises(ValueError):  # one verdict per letter: never a shifted row
        check([_letter()])
