"""The audience's tags (static segments): known by name, created once and never twice.

A tag is a static segment of the audience (``GET /lists/{id}/segments?type=static``
lists them; ``POST /lists/{id}/segments`` with ``static_segment: []`` creates one).
Creating one is the only push call that is not idempotent: a second ``POST`` with
the same name either makes a second tag of that name or is refused, depending on
the account. So a creation is never retried blindly: when its answer is lost (a
timeout, a dropped connection, a 5xx that may have come after the tag was made)
the tags are looked up by name (the listing, every page), and only a tag that is
really not there is created again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from segmerge.ports import BadAnswer, SegmergeError, _

from .mailchimp_api import Api, Listing, Page, fields

#: creations of one tag (each after a lookup found it missing) before giving up for this run
CREATE_ROUNDS = 3


@dataclass(frozen=True)
class Refusal:
    """Why a tag could not be created: ``transient`` leaves its actions for a later run."""

    reason: str
    transient: bool


class Segments:
    """Tag name -> static segment id for one audience, shared by the push's threads."""

    def __init__(self, api: Api, list_id: str, source: str) -> None:
        self.api = api
        self.list_id = list_id
        self.source = source
        self._known: dict[str, int] | None = None
        #: tags this run could not create, and why (the outcome of their actions says it)
        self.refused: dict[str, Refusal] = {}
        # lookups and creations from parallel chunks and from the batches the pipeline may
        # have in flight; reentrant, as a 404 re-lookup holds it while it asks for an id
        self.lock = threading.RLock()

    @property
    def path(self) -> str:
        return f"/lists/{self.list_id}/segments"

    def listing(self) -> Listing:
        params = {"type": "static", "fields": fields("segments", ("id", "name"))}
        return Listing(self.path, "segments", params)

    def remember(self, pages: list[Page]) -> None:
        """Tag name -> id from the listing's pages (the pull reads them in its first
        wave, so the first push needs no call of its own). An item without a text name
        and an integer id is reported, not skipped: a tag missed here would be created
        a second time."""
        found: dict[str, int] = {}
        for page in pages:
            for i, s in enumerate(page.items):
                name = s.get("name") if isinstance(s, dict) else None
                sid = s.get("id") if isinstance(s, dict) else None
                if not isinstance(name, str) or type(sid) is not int:
                    raise BadAnswer(
                        _(
                            "{source}: GET {path} (offset {offset}): segments[{i}] has no text "
                            "'name' and integer 'id' ({s!r:.120})"
                        ).format(source=self.source, path=self.path, offset=page.offset, i=i, s=s),
                        field=self.source,
                    )
                found.setdefault(name, sid)
        with self.lock:
            self._known = found

    def known(self, *, reload: bool = False) -> dict[str, int]:
        """Tag name -> id, read once per connector (and again after a lost answer)."""
        with self.lock:
            if self._known is None or reload:
                self.remember(self.api.collect([self.listing()]))
            assert self._known is not None
            return self._known

    def create(self, tags: Sequence[str]) -> None:
        """Create the tags that do not exist yet, all at once (a first run with six new
        tags waits for one round trip, not six in a row).

        Each creation is sent once; a lost answer or a refusal is followed by one
        lookup for all of them, and only the tags still missing after a lost answer
        are created again, up to :data:`CREATE_ROUNDS` times. What still fails is in
        :attr:`refused`."""
        with self.lock:
            known = self.known()
            missing = [t for t in dict.fromkeys(tags) if t not in known]
            for _ in range(CREATE_ROUNDS):
                if not missing:
                    return
                unsure: list[str] = []
                for name, result in zip(missing, self.api.map(self._post, missing), strict=True):
                    if isinstance(result, int):
                        known[name] = result
                        self.refused.pop(name, None)
                        continue
                    unsure.append(name)
                    self.refused[name] = Refusal(
                        _reason(result), transient=not isinstance(result, BadAnswer)
                    )
                if not unsure:
                    return
                known = self.known(reload=True)  # made despite the lost answer? look
                for name in unsure:
                    if name in known:
                        self.refused.pop(name, None)
                missing = [t for t in unsure if t not in known and self.refused[t].transient]

    def id_of(self, tag: str, *, create: bool) -> int | None:
        """The tag's id; created first when ``create`` and missing (None if that failed)."""
        with self.lock:
            known = self.known()
            if tag not in known and create:
                self.create([tag])
                known = self.known()
            return known.get(tag)

    def forget(self, tag: str, sid: int) -> None:
        """The tag answered 404 (deleted since it was read): read the tags again, once per
        deleted id, however many chunks met it."""
        with self.lock:
            if self.known().get(tag) == sid:
                self.known(reload=True)

    def _post(self, tag: str) -> int:
        body = self.api.json(
            "POST", self.path, json={"name": tag, "static_segment": []}, retry=False
        )
        sid = body.get("id") if isinstance(body, dict) else None
        if type(sid) is not int:
            raise BadAnswer(
                _("{source}: POST {path}: field 'id' is {kind}, expected int").format(
                    source=self.source, path=self.path, kind=type(sid).__name__
                ),
                field=self.source,
            )
        return sid


def _reason(exc: BaseException) -> str:
    """An error as the detail of the actions it holds back (a refused credential never
    gets here: :meth:`Api.map` raises it)."""
    return exc.message if isinstance(exc, SegmergeError) else f"{type(exc).__name__}: {exc}"
