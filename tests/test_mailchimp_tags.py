"""Creating a Mailchimp tag (a static segment) is never retried blindly.

The fake applies the creation and then loses its answer the ways a real answer is
lost (the connection dropped, a 5xx from a gateway, no answer until the client gives
up): the connector looks the tags up by name and uses the one that was made, so the
audience never holds the same tag twice.
"""

from __future__ import annotations

import pytest
from test_mailchimp import connect, populate
from test_mailchimp_push import tag

from tests.fakes.mailchimp import PROBLEM, MailchimpFake, serving

fake = pytest.fixture(serving, name="fake")


def named(fake: MailchimpFake, name: str) -> list[int]:
    return [sid for sid, s in fake.segments.items() if s["name"] == name]


def creations(fake: MailchimpFake) -> list[str]:
    """Every POST /segments the fake received, answered or not, applied or not."""
    return [p for m, p, _ in fake.queries if m == "POST" and p.endswith("/segments")]


@pytest.mark.parametrize("lost", ["drop", "503", "stall"])
def test_a_tag_whose_creation_answer_is_lost_is_found_not_made_twice(fake, tmp_path, lost):
    ids = populate(fake, 4)
    fake.lose_segment_answers = [lost]
    # a stalled answer ends the client's wait at its read timeout: keep that short
    conn = connect(fake, tmp_path, timeout=1.0)
    actions = [tag(i, "seg:fonceurs", f"client{n}@example.org") for n, i in enumerate(ids)]
    outcomes = conn.push(actions)
    assert {o.status for o in outcomes} == {"done"}
    assert len(named(fake, "seg:fonceurs")) == 1 and len(creations(fake)) == 1
    assert all(fake.tags_of(i) == ["seg:fonceurs"] for i in ids)
    after = [
        p
        for m, p, _ in fake.queries[
            fake.queries.index(next(q for q in fake.queries if q[0] == "POST")) + 1 :
        ]
        if m == "GET"
    ]
    assert after and after[0].endswith("/segments")  # looked up before anything else
    conn.close()


def test_a_creation_lost_before_it_was_made_is_made_after_the_lookup(fake, tmp_path):
    ids = populate(fake, 2)
    conn = connect(fake, tmp_path)
    conn.pusher.segments()  # the tags are known; the next /segments call is the creation
    fake.fail_next(503, path=r"/segments$", body={"title": "Service Unavailable"})
    outcomes = conn.push([tag(i, "seg:a", f"client{n}@example.org") for n, i in enumerate(ids)])
    assert {o.status for o in outcomes} == {"done"}
    assert len(creations(fake)) == 2  # the 503 came before the tag was made: made after
    assert [p for m, p in fake.writes if p.endswith("/segments")] == [creations(fake)[0]]
    assert [s for m, p, s in fake.log if m == "POST" and p.endswith("/segments")] == [503, 200]
    assert len(named(fake, "seg:a")) == 1


def test_new_tags_created_together_survive_one_lost_answer(fake, tmp_path):
    ids = populate(fake, 9)
    fake.lose_segment_answers = ["drop"]
    conn = connect(fake, tmp_path)
    names = ["seg:a", "seg:b", "seg:c"]
    actions = [tag(i, names[k % 3], f"client{k}@example.org") for k, i in enumerate(ids)]
    conn.prepare(actions)
    assert [len(named(fake, n)) for n in names] == [1, 1, 1] and len(creations(fake)) == 3
    assert {o.status for o in conn.push(actions)} == {"done"}
    assert len(creations(fake)) == 3


def test_a_refused_creation_fails_its_actions_with_mailchimps_reason(fake, tmp_path):
    ids = populate(fake, 2)
    conn = connect(fake, tmp_path)
    conn.pusher.segments()
    body = {
        "type": "x",
        "title": "Invalid Resource",
        "status": 400,
        "detail": "The tag name is too long.",
        "instance": "i",
    }
    fake.fail_next(400, path=r"/segments$", body=body, content_type=PROBLEM)
    outcomes = conn.push([tag(i, "seg:a", f"client{n}@example.org") for n, i in enumerate(ids)])
    assert {o.status for o in outcomes} == {"failed"}
    assert all("too long" in o.detail and "seg:a" in o.detail for o in outcomes)
    assert [s for m, p, s in fake.log if m == "POST"] == [400]  # not tried again
    assert not named(fake, "seg:a")
