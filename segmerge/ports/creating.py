"""Writing to a platform without doing it twice: create once, and what a failure means.

Creating a list, a folder, a draft or a campaign is the one kind of call that is not
safe to repeat: when its answer is lost (a 5xx, a timeout), the thing may exist all
the same, and a blind retry makes a second one a marketer then has to find and
delete. So every connector creates the same way: the call is sent without the
client's retries, and after a lost answer the name is looked up before anything
else. A refused credential stops the command; a refusal (:class:`BadAnswer`) is the
platform's word that the thing was not made, so trying again would not help.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from segmerge.errors import BadAnswer, ConnectorError, CredentialError
from segmerge.ports.connector import OutcomeStatus

T = TypeVar("T")


def create_once(
    create: Callable[[], T],
    lookup: Callable[[], T | None],
    *,
    attempts: int = 1,
    pause: float = 0.5,
    look_after_refusal: bool = False,
) -> T:
    """What ``create`` made, or what ``lookup`` finds after its answer was lost.

    ``attempts`` > 1 creates again when the lookup finds nothing, after ``pause``
    seconds doubled each time; the last error is raised when none landed.
    ``look_after_refusal`` looks up after a :class:`BadAnswer` too, for a platform
    that refuses a name already taken (the one found is then the answer).
    """
    for attempt in range(attempts):
        try:
            return create()
        except CredentialError:
            raise
        except ConnectorError as exc:
            if isinstance(exc, BadAnswer) and not look_after_refusal:
                raise
            found = lookup()
            if found is not None:
                return found
            if attempt == attempts - 1:
                raise
        time.sleep(pause * 2**attempt)
    raise ValueError(f"create_once needs at least one attempt, not {attempts}")


def failure_status(exc: ConnectorError) -> OutcomeStatus:
    """The outcome of an action a platform's error held back: a refusal is final
    (``failed``), anything else (down, timed out, throttled past the retries) is tried
    again on the next run (``retry``). A :class:`CredentialError` is not an action's
    outcome: the caller lets it stop the command.
    """
    return "failed" if isinstance(exc, BadAnswer) else "retry"
