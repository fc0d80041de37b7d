"""Pushing planned actions to a destination, batch by batch: intent, call, outcome.

Every batch is marked in flight in the ledger before the destination sees
it and recorded when its outcomes come back, so a run killed at any moment
leaves each action planned, in flight (settled on resume) or recorded.

A destination limited by concurrent connections rather than by a rate
(Mailchimp's 10) loses its connections at every batch boundary: the last
requests of a batch drain one by one while the next batch waits for its
turn. Such a destination sets ``Destination.concurrent_batches`` above 1 (and
must then be safe to call from that many threads): the next batches are handed
over while the previous one is still in flight, and the ledger, which only this
thread touches, records each batch as soon as it is back, in order. Such a
push also ramps its batches up and down (a 16th of ``batch_size``, an 8th, a
quarter, a half, then whole batches, and the same backwards at the end): the
first call waits for the ledger to mark a few hundred rows, not ten thousand,
and the last answer is followed by a short record, not a long one, so the
connections are not left idle at either end.

Before any of that, :func:`plan_while_preparing` lets each destination get
ready for its actions (a first run's new Mailchimp tags) while the ledger
writes the plan, so the first batch does not wait for a round trip of setup.

Every feature is read from the :class:`~segmerge.ports.Destination` contract, where
each has its default (batches of 100, one at a time, no throttle wait).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from itertools import chain, islice, repeat

from segmerge.errors import ConnectorError, SegmergeError
from segmerge.heap import frozen_heap
from segmerge.ledger.store import Ledger
from segmerge.ports.connector import Action, Destination, Outcome

Progress = Callable[[str, int, int], None]


@frozen_heap()  # a full collection in the middle would stall every connection in flight
def push_in_batches(
    ledger: Ledger,
    dest: Destination,
    todo: Sequence[Action] | Iterable[Action],
    phase: str,
    progress: Progress | None,
    total: int | None = None,
) -> None:
    """Push ``todo`` (actions the ledger has as planned) and record every outcome.

    ``todo`` may be a stream (a run's letters, rendered and planned a chunk at a
    time as the batches need them) with ``total`` the most it can yield: batches
    are cut as it comes, the same ones a list would give when it yields ``total``.

    Raises what the destination raised, once every batch already handed over
    has been recorded: a ConnectorError puts its batch back to planned; any
    other error records it as retry, or uncertain when redoing it could
    duplicate it (a send).
    """
    size = max(1, dest.batch_size)
    overlap = max(1, dest.concurrent_batches)
    if total is None:
        assert isinstance(todo, Sequence), "a stream of actions needs its total"
        total = len(todo)
    batches = _batches(iter(todo), batch_sizes(total, size, ramp=overlap > 1), size)
    done = 0
    quiet = False  # set once the push is stopping: record, but call progress no more
    if progress:
        progress(phase, 0, total)

    def settle(batch: list[Action], outcomes: list[Outcome] | BaseException) -> None:
        nonlocal done
        if isinstance(outcomes, BaseException):
            if isinstance(outcomes, ConnectorError):  # by contract, nothing of it was done
                ledger.record([(a.key, "retry", outcomes.message) for a in batch])
            else:  # a connector bug must not leave rows in flight forever
                status = "retry" if dest.idempotent else "uncertain"
                detail = f"{type(outcomes).__name__}: {outcomes}"
                ledger.record([(a.key, status, detail) for a in batch])
            return
        seen = {o.key for o in outcomes}
        rows = [(o.key, o.status, o.detail) for o in outcomes]
        rows += [(a.key, "retry", "no outcome returned") for a in batch if a.key not in seen]
        ledger.record(rows, {o.key: o.platform_id for o in outcomes if o.platform_id})
        done += len(batch)
        if progress and not quiet:
            progress(phase, done, total)

    def finished() -> None:
        if progress and done < total:  # a stream gave fewer than it might have
            progress(phase, done, done)

    if overlap == 1:
        for batch in batches:
            dest.wait_ready(len(batch))  # a throttle waits before the intent, not in flight
            ledger.mark_in_flight([a.key for a in batch])
            try:
                outcomes = dest.push(batch)
            except Exception as exc:
                settle(batch, exc)
                raise
            settle(batch, outcomes)
            del batch, outcomes  # a stream makes the next batch without this one held
        finished()
        return

    failure: BaseException | None = None
    pending: deque[tuple[list[Action], Future[list[Outcome]]]] = deque()

    def settle_oldest() -> None:
        nonlocal failure
        batch, future = pending.popleft()
        try:
            outcomes: list[Outcome] | BaseException = future.result()
        except Exception as exc:  # noqa: BLE001 - recorded, then raised once all are settled
            outcomes = exc
            failure = failure or exc
        settle(batch, outcomes)

    with ThreadPoolExecutor(overlap, thread_name_prefix="segmerge-push") as pool:
        try:
            for batch in batches:
                while len(pending) >= overlap or (pending and failure is not None):
                    settle_oldest()
                if failure is not None:
                    break  # what is not handed over stays planned
                dest.wait_ready(len(batch))
                ledger.mark_in_flight([a.key for a in batch])
                pending.append((batch, pool.submit(dest.push, batch)))
        except BaseException:  # a stop asked at a checkpoint (progress), a signal
            quiet = True  # the batches still in flight are recorded, without reporting
            while pending:
                settle_oldest()
            raise
        while pending:
            settle_oldest()
    if failure is not None:
        raise failure
    finished()


def plan_while_preparing(
    plan: Callable[[], object], work: Sequence[tuple[Destination, Sequence[Action]]]
) -> None:
    """Run ``plan`` (the ledger writing the run's plan) while each destination prepares
    for its actions (:meth:`Destination.prepare`), and wait for both.

    A preparation that fails is not an error of the run: the push meets the same
    problem and reports it per action, in the ledger. A bug (any other exception)
    is raised once the plan is written."""
    work = [(dest, acts) for dest, acts in work if acts]
    if not work:
        plan()
        return
    with ThreadPoolExecutor(1, thread_name_prefix="segmerge-prepare") as pool:

        def prepare_all() -> None:
            for dest, acts in work:
                with suppress(SegmergeError):  # the push tries again, and records what fails
                    dest.prepare(acts)

        ready = pool.submit(prepare_all)
        plan()
        ready.result()


def batch_sizes(total: int, size: int, *, ramp: bool) -> list[int]:
    """How ``total`` actions are cut into batches of at most ``size``; with ``ramp``, the
    first and the last few are smaller (see the module's docstring). Each ramp step
    divides ``size`` by a power of two, so a destination whose own unit divides a
    16th of its batch size (Mailchimp's 500 e-mails a call) never gets a partial call
    out of the ramp."""
    steps = sorted({size >> k for k in (4, 3, 2, 1)} - {0}) if ramp else []
    if not steps or total <= steps[0]:
        return [size] * (total // size) + ([total % size] if total % size else [])
    up, rest = [], total
    for step in steps:
        if rest <= 0:
            break
        up.append(min(step, rest))
        rest -= up[-1]
    down = list(reversed(steps)) if rest >= sum(steps) + size else []
    rest -= sum(down)
    middle = ([rest % size] if rest % size else []) + [size] * (rest // size)
    return up + middle + down


def _batches(stream: Iterator[Action], sizes: list[int], size: int) -> Iterator[list[Action]]:
    """``stream`` cut into batches of ``sizes``, then of ``size`` should it yield more;
    taken as they are needed, so a stream makes its actions just in time."""
    for n in chain(sizes, repeat(size)):
        batch = list(islice(stream, n))
        if not batch:
            return
        yield batch
        del batch  # not held while the next one is made
