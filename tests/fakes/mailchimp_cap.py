"""Mailchimp's 10 simultaneous connections, enforced and measured by its fake.

A mixin of :class:`MailchimpFake`: the 11th request in flight answers 429
(Mailchimp sends no rate headers and no Retry-After), and the time requests
are open is integrated, which the benchmark reports as achieved concurrency.
"""

from __future__ import annotations

import re
import time
from typing import Any

from tests.fakes.base import Reply, Request
from tests.fakes.mailchimp_wire import problem

#: seconds a gathered request waits for the others before it goes on alone
GATHER_TIMEOUT = 10.0
_ENDPOINT = re.compile(r"/(?:[0-9a-f]{10,}|\d+)(?=/|$)")  # ids in a path, for per-endpoint counts


class ConnectionCap:
    def reset_stats(self) -> None:
        with self._conc:
            self._busy, self._since = 0.0, time.monotonic()
            self.peak = self.total_429 = self.consecutive_429 = self.max_consecutive_429 = 0
            self.endpoint_peak.clear()

    def busy_seconds(self) -> float:
        """Integral over time of the connections in use, from a request's arrival to the
        last byte of its answer (÷ elapsed = mean concurrency)."""
        with self._conc:
            self._tick()
            return self._busy

    def _tick(self) -> None:
        now = time.monotonic()
        self._busy += self.open * (now - self._since)
        self._since = now

    def _handle(self, h: Any) -> None:
        with self._conc:
            self._tick()
            self.open += 1
        try:
            super()._handle(h)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            h.close_connection = True
        finally:
            with self._conc:
                self._tick()
                self.open -= 1

    def gather_at(self, method: str, path: str, n: int) -> None:
        """Hold the next requests to this endpoint (ids as ``{id}``) until ``n`` of them are
        in flight at once, then let them all through (once): a client that sends them
        together meets the others at the server whatever the machine's load, one that
        sends them in a row waits :data:`GATHER_TIMEOUT` and shows a lower peak."""
        with self._conc:
            self._gathering[(method, path)] = n

    def _gather(self, endpoint: tuple[str, str]) -> None:
        """Called with the lock held, this request already counted in its endpoint."""
        need = self._gathering.get(endpoint)
        if need is None:
            return
        if self._in_endpoint[endpoint] >= need:
            del self._gathering[endpoint]
            self._gathered.notify_all()
            return
        self._gathered.wait_for(lambda: endpoint not in self._gathering, GATHER_TIMEOUT)

    def _answer(self, req: Request, h: Any, query: str) -> Reply:
        with self._conc:
            if self.active + self.occupied >= self.max_connections:
                self.total_429 += 1
                self.consecutive_429 += 1
                self.max_consecutive_429 = max(self.max_consecutive_429, self.consecutive_429)
                return problem(
                    429,
                    "Too Many Requests",
                    "You have exceeded the limit of 10 simultaneous connections.",
                )
            self.consecutive_429 = 0
            self.active += 1
            self.queries.append((req.method, req.path, {k: v[0] for k, v in req.params.items()}))
            self.peak = max(self.peak, self.active)
            endpoint = (req.method, _ENDPOINT.sub("/{id}", req.path))
            self._in_endpoint[endpoint] = self._in_endpoint.get(endpoint, 0) + 1
            self.endpoint_peak[endpoint] = max(
                self.endpoint_peak.get(endpoint, 0), self._in_endpoint[endpoint]
            )
            self._gather(endpoint)
        try:
            if self.latency:
                time.sleep(self.latency)
            return super()._answer(req, h, query)
        finally:  # released before the answer is written, as a server frees its worker
            with self._conc:
                self.active -= 1
                self._in_endpoint[endpoint] -= 1
