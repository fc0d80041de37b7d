"""Answers the Mailchimp fake loses after it has applied the request.

A mixin of :class:`MailchimpFake`. A handler that has applied a change calls
:meth:`lose` with how its answer is to be lost, the way a real one is lost on the
way back: ``"drop"`` closes the connection without a word; ``"503"`` answers a
5xx although the change was made (a gateway timing out behind the server);
``"stall"`` says nothing until the client has given up and sent its next
request (so the test waits on that request, not on a guessed delay), then
closes the connection.

:meth:`stall_until_retried` makes the next request on a path say nothing until the
client, having given up on it (its read timeout), sends the same request again: a
timeout that costs the client's timeout and nothing more, however loaded the machine.

``before_answer`` and ``after_answer`` (a test's callables, given the request) run
around each answer outside the fake's lock, so a test can hold one request until
another has been answered, or change the audience between two pages.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.base import Reply, Request
from tests.fakes.mailchimp_wire import problem

MODES = ("drop", "503", "stall")
#: a stalled answer is given up on after this long even if no other request came (a test
#: that fails must not hang)
STALL_CAP = 60.0


class AnswerLost(ConnectionResetError):
    """Raised past the handler: the server closes the connection without answering."""


class LostAnswers:
    def _init_lost_answers(self) -> None:
        self._lost = threading.local()
        self._next_request = threading.Condition()
        self._requests_seen = 0
        self._stalls: list[re.Pattern[str]] = []
        self._asked: dict[tuple[str, str, str], int] = {}  # request -> times it came
        self.stalls_retried = 0  # stalled requests the client gave up on and sent again
        self.before_answer: Callable[[Request], None] | None = None
        self.after_answer: Callable[[Request], None] | None = None

    def lose(self, mode: str) -> None:
        """Lose the answer to the request being handled (called by a handler)."""
        assert mode in MODES, mode
        self._lost.mode = mode

    def stall_until_retried(self, path: str) -> None:
        """The next request whose path matches ``path`` (a regex) is answered only once
        the same request came again, and then by closing the connection."""
        with self._next_request:
            self._stalls.append(re.compile(path))

    def _answer(self, req: Request, h: Any, query: str) -> Reply:
        key = (req.method, req.path, query)
        with self._next_request:
            self._requests_seen += 1
            seen = self._requests_seen
            self._asked[key] = times = self._asked.get(key, 0) + 1
            self._next_request.notify_all()
            stall = next((p for p in self._stalls if p.search(req.path)), None)
            if stall is not None:
                self._stalls.remove(stall)
        if stall is not None:
            with self._next_request:
                if self._next_request.wait_for(lambda: self._asked[key] > times, STALL_CAP):
                    self.stalls_retried += 1
            raise AnswerLost(f"{req.method} {req.path}: answered after the client gave up")
        self._lost.mode = None
        if self.before_answer is not None:
            self.before_answer(req)
        reply = super()._answer(req, h, query)  # type: ignore[misc]
        mode, self._lost.mode = self._lost.mode, None
        if self.after_answer is not None:
            self.after_answer(req)
        if mode == "503":
            return problem(503, "Service Unavailable", "The server did not answer in time.")
        if mode == "stall":
            with self._next_request:
                self._next_request.wait_for(lambda: self._requests_seen > seen, STALL_CAP)
        if mode in ("drop", "stall"):
            raise AnswerLost(f"{req.method} {req.path}: answer lost on purpose ({mode})")
        return reply
