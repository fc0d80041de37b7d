"""Contact data in a header only ever names: it never adds a recipient, an address or a header.

One real run mails hostile contacts through aiosmtpd on 127.0.0.1, with a
letter whose From and Reply-To names are filled from contact data. Each test
then reads what the server received: the envelope (RCPT TO), and the message
as Python's email parser reads the bytes (``policy=default``).
"""

from __future__ import annotations

import csv
import email
import email.policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli import segmerge
from smtp_server import SmtpServer, make_workspace

from segmerge.errors import TemplateError
from segmerge.mail.message import MessageError, build_message
from segmerge.render.templates import Rendered, TemplateSet
from segmerge.run.pipeline import RunOptions, run
from segmerge.workspace.config import load

AS_OF = "2026-12-01"
SENDER = "bonjour@boutique.example"
REPLY = "sav@boutique.example"
ATTACKER = "attacker@evil.example"
LETTER = f"""---
subject: "Bonjour {{{{ contact.first_name }}}}"
from: "{{{{ contact.first_name }}}} de La Boutique <{SENDER}>"
reply_to: "{{{{ contact.last_name | default('Service client') }}}} <{REPLY}>"
---
<p>Bonjour {{{{ contact.first_name }}}},</p>
<p><a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></p>
"""
# contact id -> (first name, last name): every way a name could try to become an address
HOSTILE = {
    "quotes": (f'x" <{ATTACKER}>, "', "Dupont"),
    "crlf": (f"a\r\nBcc: {ATTACKER}", f"b\r\nCc: {ATTACKER}"),
    "comma": ("Petit, Carole", ""),
    "encoded": ("=?utf-8?q?=3Cattacker=40evil.example=3E?=", ""),
    "long": ("A" * 10_000, "B" * 10_000),
    "brackets": (f"<{ATTACKER}>", "(x) ; : @ ."),
    "unicode": ("Zoé\u202e", f"Lefèvre <{ATTACKER}>"),
    "plain": ("Marie", "Curie"),
}
# contact id -> an e-mail address that tries to smuggle a second recipient or a command
BAD_ADDRESSES = {
    "smuggle": f"smuggle@clients.example>\r\nRCPT TO:<{ATTACKER}",
    "list": f"list@clients.example, {ATTACKER}",
    "angle": f"Eve <{ATTACKER}>",
}
EXPECTED_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "x-segmerge-campaign",
    "x-segmerge-segment",
}


def address(cid: str) -> str:
    return f"{cid}@clients.example"


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One run over the hostile contacts: what the SMTP server got, by contact id."""
    root = tmp_path_factory.mktemp("headers")
    with SmtpServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        make_workspace(root, 0, server)
        with (root / "data" / "contacts.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["contact_id", "email", "first_name", "last_name", "subscribed"])
            for cid, (first, last) in HOSTILE.items():
                w.writerow([cid, address(cid), first, last, "true"])
            for cid, email_ in BAD_ADDRESSES.items():
                w.writerow([cid, email_, "Eve", "", "true"])
        (root / "templates" / "tous" / "_default.html.j2").write_text(LETTER, encoding="utf-8")
        summary = run(load(root), "lettre", RunOptions(as_of=AS_OF))
        messages, rcpts = server.messages, server.rcpts
    by_rcpt = {m.rcpt_tos[0].split("@")[0]: m for m in messages}
    return {"summary": summary, "messages": messages, "by": by_rcpt, "rcpts": rcpts}


def parsed(received: dict, cid: str) -> email.message.EmailMessage:
    m = received["by"][cid]
    return email.message_from_bytes(m.data, policy=email.policy.default)


def test_every_hostile_contact_is_mailed_once_and_only_at_its_own_address(received):
    assert sorted(m.rcpt_tos[0] for m in received["messages"]) == sorted(map(address, HOSTILE))
    for m in received["messages"]:
        assert len(m.rcpt_tos) == 1  # RCPT TO: the contact, nobody else
        assert m.mail_from == SENDER  # the envelope sender is the configured one


@pytest.mark.parametrize("cid", sorted(HOSTILE))
def test_a_hostile_name_never_adds_an_address_or_a_header(received, cid):
    msg = parsed(received, cid)
    assert [a.addr_spec for a in msg["To"].addresses] == [address(cid)]
    assert [a.addr_spec for a in msg["From"].addresses] == [SENDER]
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == [REPLY]
    assert {k.lower() for k in msg} == EXPECTED_HEADERS  # no Bcc, no Cc, nothing else
    for header in ("To", "From", "Reply-To"):
        name = msg[header].addresses[0].display_name
        assert not set(name) & set('<>"\r\n\u202e'), (header, name)
    raw_head = received["by"][cid].data.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 998 for line in raw_head.split(b"\r\n"))


def test_a_comma_in_a_name_is_quoted_and_the_letter_sent(received):
    raw = received["by"]["comma"].data
    assert b'To: "Petit, Carole" <comma@clients.example>' in raw
    assert b'From: "Petit, Carole de La Boutique" <bonjour@boutique.example>' in raw
    assert parsed(received, "comma")["To"].addresses[0].display_name == "Petit, Carole"


def test_a_pre_encoded_word_in_a_name_is_shown_as_typed_not_decoded(received):
    msg = parsed(received, "encoded")
    shown = msg["To"].addresses[0].display_name
    assert shown == "=?utf-8?q?=3Cattacker=40evil.example=3E?="  # never "<attacker@...>"


def test_line_breaks_in_a_name_become_spaces_not_headers(received):
    msg = parsed(received, "crlf")
    assert msg["To"].addresses[0].display_name == f"a Bcc: {ATTACKER} b Cc: {ATTACKER}"
    assert msg["Bcc"] is None and msg["Cc"] is None


def test_a_10kb_name_is_cut_to_a_name(received):
    msg = parsed(received, "long")
    assert len(msg["To"].addresses[0].display_name) <= 100
    assert msg["To"].addresses[0].addr_spec == address("long")


@pytest.mark.parametrize(
    "value, line",
    [
        ('"{{ contact.email }}"', 3),
        ('"La Boutique <{{ contact.email }}>"', 3),
        ('"{{ contact.first_name }} <{{ contact.first_name }}@boutique.example>"', 3),
        ('"{% if contact.vip %}vip@boutique.example{% else %}x@boutique.example{% endif %}"', 3),
        ('"{{ contact.first_name }} <bonjour@boutique.example> {{ contact.last_name }}"', 3),
    ],
)
def test_a_templated_address_is_refused_when_the_letters_load(tmp_path, value, line):
    (tmp_path / "_default.html.j2").write_text(
        f"---\nsubject: Bonjour\nfrom: {value}\n---\n<p>x</p>\n", encoding="utf-8"
    )
    with pytest.raises(TemplateError) as err:
        TemplateSet.load(
            tmp_path, [("tous", "Tous")], tz=ZoneInfo("Europe/Paris"), known_columns=None
        )
    assert err.value.line == line and err.value.field == "from"
    assert err.value.file == str(tmp_path / "_default.html.j2")


def test_validate_refuses_a_templated_reply_to_address_with_file_and_line(tmp_path):
    with SmtpServer() as server:  # validate checks the relay answers
        make_workspace(tmp_path, 2, server)
        _validate_with_templated_reply_to(tmp_path)


def _validate_with_templated_reply_to(tmp_path: Path) -> None:
    letter = tmp_path / "templates" / "tous" / "_default.html.j2"
    letter.write_text(
        '---\nsubject: Bonjour\nreply_to: "{{ contact.first_name }} <{{ contact.email }}>"\n'
        "---\n<p>x</p>\n",
        encoding="utf-8",
    )
    done = segmerge("validate", "-w", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "_default.html.j2:3" in said and "reply_to" in said and "Traceback" not in said


def test_an_address_smuggling_a_recipient_is_skipped_and_never_reaches_rcpt_to(received):
    assert ATTACKER not in " ".join(received["rcpts"])  # every RCPT TO the server saw
    summary = received["summary"]  # refused by consent's address check, or by the message's
    assert sum(summary.not_mailed.values()) + len(summary.render_errors) == len(BAD_ADDRESSES)
    assert len(received["messages"]) == len(HOSTILE)


@pytest.mark.parametrize("to", sorted(BAD_ADDRESSES.values()))
def test_the_message_itself_refuses_an_address_that_smuggles_another(to):
    """The second line of defence, if a contact's address got past the consent checks."""
    letter = Rendered("Bonjour", "", "<p>x</p>", "x", None, None, "t.html.j2")
    with pytest.raises(MessageError):
        build_message(
            letter,
            to=to,
            to_name="Eve",
            from_addr=f"Shop <{SENDER}>",
            message_id="<a@boutique.example>",
            unsubscribe_url="https://b.example/u",
        )
