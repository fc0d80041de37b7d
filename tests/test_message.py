"""Messages: parsed back with the stdlib as a mail client would, header by header."""

from __future__ import annotations

import email
import email.policy
import random
import re
from datetime import UTC, datetime

import pytest

from segmerge.mail.message import MessageError, build_message, check_message, message_id_for
from segmerge.render.templates import Rendered

WHEN = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
UNSUB = "https://boutique-dimanche.fr/desabonnement?token=abc"
LETTER = Rendered(
    subject="Zoé, nos nouveautés en avant-première",
    preheader="Livraison express offerte",
    html='<!DOCTYPE html><html><head><title>t</title></head><body style="margin:0">'
    "<p>Bonjour Zoé</p></body></html>",
    text="Bonjour Zoé,\nà bientôt",
    from_addr=None,
    reply_to=None,
    template="templates/profils-vpc/fonceurs.html.j2",
)


def check(r: Rendered = LETTER, **kw):
    """What a dry run does: :func:`check_message` with the same arguments as ``build``."""
    return check_message(r, **_args(kw))


def build(r: Rendered = LETTER, **kw):
    return build_message(r, **_args(kw))


def _args(kw: dict) -> dict:
    args = dict(
        to="zoe.dupont@example.fr",
        to_name="Zoé Dupont",
        from_addr="La Boutique du Dimanche <bonjour@boutique-dimanche.fr>",
        message_id=message_id_for("profils@2026-03-03|00042|send", "boutique-dimanche.fr"),
        unsubscribe_url=UNSUB,
        unsubscribe_mailto="desabonnement@boutique-dimanche.fr",
        date=WHEN,
    )
    args.update(kw)
    return args


def wire(msg) -> bytes:
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def parse(msg):
    return email.message_from_bytes(wire(msg), policy=email.policy.default)


def test_structure_text_then_html_in_utf8():
    p = parse(build())
    assert p.get_content_type() == "multipart/alternative" and p["MIME-Version"] == "1.0"
    parts = list(p.iter_parts())
    assert [x.get_content_type() for x in parts] == ["text/plain", "text/html"]
    assert all(x.get_content_charset() == "utf-8" for x in parts)
    assert all(x["Content-Transfer-Encoding"] in ("quoted-printable", "base64") for x in parts)
    assert parts[0].get_content().replace("\r\n", "\n") == "Bonjour Zoé,\nà bientôt\n"
    assert "<p>Bonjour Zoé</p>" in parts[1].get_content()


def test_headers_as_a_mail_client_reads_them():
    raw = wire(build())
    assert raw.isascii() and b"\r\n\r\n" in raw
    p = email.message_from_bytes(raw, policy=email.policy.default)
    assert p["Subject"] == "Zoé, nos nouveautés en avant-première"
    assert b"Subject: =?utf-8?q?Zo=C3=A9" in raw  # RFC 2047, not raw UTF-8
    to = p["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == ("Zoé Dupont", "zoe.dupont@example.fr")
    assert p["From"].addresses[0].addr_spec == "bonjour@boutique-dimanche.fr"
    assert p["Date"].datetime == WHEN
    assert p["List-Unsubscribe"] == (
        f"<{UNSUB}>, <mailto:desabonnement@boutique-dimanche.fr?subject=unsubscribe>"
    )
    assert p["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert p["Reply-To"] is None


def test_a_long_unsubscribe_link_stays_whole_and_unencoded():
    url = "https://boutique-dimanche.fr/desabonnement?token=" + "a1B2" * 40
    raw = wire(build(unsubscribe_url=url))
    assert f"List-Unsubscribe: <{url}>,\r\n <mailto:".encode() in raw
    assert parse(build(unsubscribe_url=url))["List-Unsubscribe"].startswith(f"<{url}>")


def test_message_id_is_deterministic_and_so_are_the_bytes():
    key = "profils@2026-03-03|00042|send"
    mid = message_id_for(key, "boutique-dimanche.fr")
    assert re.fullmatch(r"<[0-9a-f]{32}@boutique-dimanche\.fr>", mid)
    assert mid == message_id_for(key, "boutique-dimanche.fr")
    assert mid != message_id_for("profils@2026-03-03|00043|send", "boutique-dimanche.fr")
    assert parse(build())["Message-ID"] == mid
    assert wire(build()) == wire(build())  # boundary derived from the Message-ID


def test_the_preheader_is_the_hidden_first_element_of_the_body():
    html = parse(build()).get_body(("html",)).get_content()
    after_body = html.split('<body style="margin:0">', 1)[1]
    assert after_body.startswith('<div style="display:none;')
    assert after_body.index("Livraison express offerte") < after_body.index("<p>Bonjour")
    no_pre = Rendered(**{**LETTER.__dict__, "preheader": ""})
    assert "display:none" not in parse(build(no_pre)).get_body(("html",)).get_content()


def test_reply_to_and_extra_headers():
    p = parse(
        build(
            reply_to="Service client <aide@boutique-dimanche.fr>",
            extra_headers={"X-Segmerge-Segment": "fonceurs", "X-Note": "été"},
        )
    )
    assert p["Reply-To"].addresses[0].addr_spec == "aide@boutique-dimanche.fr"
    assert p["X-Segmerge-Segment"] == "fonceurs" and p["X-Note"] == "été"


def test_line_breaks_in_subject_or_name_cannot_add_a_header():
    evil = Rendered(**{**LETTER.__dict__, "subject": "Promo\r\nBcc: everyone@example.org"})
    p = parse(
        build(
            evil,
            to_name="Zoé\nBcc: x@example.org",
            extra_headers={"X-Note": "a\r\nBcc: y@example.org"},
        )
    )
    assert p["Bcc"] is None
    assert p["Subject"] == "Promo Bcc: everyone@example.org"
    assert p["To"].addresses[0].addr_spec == "zoe.dupont@example.fr"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"to": "zoe@example.fr\r\nBcc: evil@example.org"}, "to"),
        ({"to": "pas-une-adresse"}, "to"),
        ({"to": "zoe@localhost"}, "to"),
        ({"from_addr": "Boutique <b@x.fr>\nBcc: evil@x.fr"}, "from"),
        ({"reply_to": "n'importe quoi"}, "reply_to"),
        ({"unsubscribe_url": "http://boutique.fr/u"}, "unsubscribe_url"),
        ({"unsubscribe_url": "https://b.fr/u>, <https://evil.fr"}, "unsubscribe_url"),
        ({"message_id": "pas un id"}, "message_id"),
        ({"extra_headers": {"Bcc": "x@example.org"}}, "extra_headers"),
        ({"extra_headers": {"X-Bad\r\nBcc": "x"}}, "extra_headers"),
    ],
)
def test_bad_addresses_and_headers_are_refused(kw, field):
    with pytest.raises(MessageError) as e:
        build(**kw)
    assert e.value.field == field
    # a dry run checks without building: the same letter refused, for the same reason
    with pytest.raises(MessageError) as checked:
        check(**kw)
    assert (checked.value.field, str(checked.value)) == (field, str(e.value))


def test_a_dry_run_refuses_exactly_the_letters_a_send_refuses():
    """Random subjects, names, senders and headers (line breaks, quotes, brackets, encoded
    words, non-ASCII): check_message refuses a letter iff build_message does, alike."""
    rng = random.Random(18)
    alphabet = "abcé ÉZ日本\u202f\u00a0,\"'<>=?_\t\n\r\x00@.-\ud800"
    refused = 0
    for _ in range(400):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        r = Rendered(**{**LETTER.__dict__, "subject": s or "x", "text": s, "preheader": s})
        field = rng.choice(["to", "from_addr", "reply_to", "to_name", "unsubscribe_mailto"])
        kw = {
            field: s + rng.choice(["", "@x.fr"]),
            "extra_headers": {rng.choice(["X-A"] * 8 + ["X-B\n", "Bcc"]): s},
        }
        if rng.random() < 0.3:  # a link made of contact data (a token), good or bad
            kw["unsubscribe_url"] = rng.choice(["https://x.fr/?t=", "http://x.fr/", ""]) + s
        outcomes = []
        for make in (build, check):
            try:
                make(r, **kw)
                outcomes.append(None)
            except (MessageError, UnicodeEncodeError) as exc:
                outcomes.append((type(exc), str(exc)))
        assert outcomes[0] == outcomes[1], (s, kw, outcomes)
        refused += outcomes[0] is not None
    assert 10 <= refused <= 390  # both kinds of letter were tried


def test_international_domain_is_sent_in_idna_form():
    p = parse(build(to="zoe@exämple.fr"))
    assert p["To"].addresses[0].domain == "xn--exmple-cua.fr"


def test_a_non_latin_letter_is_base64_and_still_reads_back():
    greek = Rendered(**{**LETTER.__dict__, "text": "Καλημέρα σας, ευχαριστούμε!" * 3})
    part = parse(build(greek)).get_body(("plain",))
    assert part["Content-Transfer-Encoding"] == "base64"
    assert part.get_content().startswith("Καλημέρα σας")


def test_header_lines_stay_under_78_characters():
    long = Rendered(
        **{**LETTER.__dict__, "subject": "Zoé, " + "des nouveautés vraiment formidables " * 4}
    )
    raw = wire(build(long, to_name="Zoé-Éléonore Dupont-Lefèvre de la Tour d'Auvergne et Navarre"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert parse(build(long))["Subject"] == long.subject.strip()


def test_a_sender_or_domain_checked_once_per_run_is_still_refused_every_time():
    """Senders and domains are parsed once for many letters: a good one must not make a
    bad one pass, and a bad one fails every letter, not only the first."""
    build()
    for make in (build, check, build, check):
        with pytest.raises(MessageError):
            make(from_addr="Boutique <b@x.fr>\nBcc: evil@x.fr")
        with pytest.raises(MessageError):
            make(to="zoe@exa_mple")
        with pytest.raises(MessageError):
            make(unsubscribe_mailto="stop@exa_mple")
        with pytest.raises(UnicodeEncodeError):
            make(to_name="Zoé \ud800")
        with pytest.raises(UnicodeEncodeError):
            make(unsubscribe_url="https://x.fr/?t=\ud800")
    assert parse(build())["From"].addresses[0].domain == "boutique-dimanche.fr"


@pytest.mark.parametrize("name", ["Zoé", "日本語の名前", "Zoé-Éléonore " * 7])
def test_encoded_names_of_one_word_or_many_read_back_whole(name):
    shown = parse(build(to_name=name))["To"].addresses[0].display_name
    assert shown.split() == name.split()  # a reader may keep a blank between two words
