"""A create sent once: after a lost answer the platform is asked before anything is made
again, so a marketer never finds two lists or two drafts of one name."""

from __future__ import annotations

import pytest

from segmerge.ports import (
    BadAnswer,
    ConnectorError,
    CredentialError,
    create_once,
    failure_status,
)


class Platform:
    """A platform whose creations land, and whose answers may be lost on the way back."""

    def __init__(self, *errors: ConnectorError) -> None:
        self.errors = list(errors)
        self.made: list[str] = []
        self.lookups = 0

    def create(self) -> str:
        self.made.append(f"id{len(self.made) + 1}")
        if self.errors:
            raise self.errors.pop(0)
        return self.made[-1]

    def lookup(self) -> str | None:
        self.lookups += 1
        return self.made[-1] if self.made else None


def test_a_lost_answer_is_looked_up_and_nothing_is_made_twice() -> None:
    p = Platform(ConnectorError("HTTP 502"))
    assert create_once(p.create, p.lookup) == "id1"
    assert p.made == ["id1"] and p.lookups == 1


def test_nothing_found_after_a_lost_answer_raises_it_unless_attempts_are_left() -> None:
    p = Platform(ConnectorError("timeout"))
    with pytest.raises(ConnectorError, match="timeout"):
        create_once(p.create, lambda: None)
    p = Platform(ConnectorError("timeout"))
    assert create_once(p.create, lambda: None, attempts=2, pause=0) == "id2"


def test_a_refusal_and_a_refused_credential_are_raised_without_a_lookup() -> None:
    for error in (BadAnswer("HTTP 400"), CredentialError("HTTP 401")):
        p = Platform(error)
        with pytest.raises(type(error)):
            create_once(p.create, p.lookup, attempts=3, pause=0)
        assert p.lookups == 0 and len(p.made) == 1


def test_a_refusal_may_mean_the_name_is_taken_when_the_platform_says_so() -> None:
    p = Platform(BadAnswer("HTTP 409 name taken"))
    assert create_once(p.create, p.lookup, look_after_refusal=True) == "id1"


def test_a_refusal_is_final_and_anything_else_is_tried_next_run() -> None:
    assert failure_status(BadAnswer("HTTP 400")) == "failed"
    assert failure_status(ConnectorError("HTTP 503")) == "retry"
