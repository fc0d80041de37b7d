"""A/B variants of a segment's letter and the campaign's holdout: who gets what.

A test is cheap only if it is trustworthy: each contact's group must not
change from one run to the next (or the comparison mixes people), must not
depend on the order of the export, and must split evenly. So the group comes
from a hash of the campaign and the contact's *mailbox* alone (its normalised
address, see :mod:`segmerge.ports.addresses`; the contact id when it has none): the
same mailbox in the same campaign always lands in the same group, whatever
else changes. Hashing the mailbox rather than the contact id means two
contacts sharing one address (a household, a duplicate) are always in the
same group: an address is never held out through one record and mailed
through the other, whichever of them de-duplication keeps.
Two independent hashes decide the holdout and the variant, so the holdout
share does not bias the split between variants.

Variants are either whole letters (``fonceurs.A.html.j2``,
``fonceurs.B.html.j2``) or subject lines only (``subject.A:``/``subject.B:``
in the front matter). A holdout (``holdout = 0.1`` in the campaign) gets
nothing, so that the effect of sending at all can be measured.

NumPy, pandas and the address rules are imported by the functions that draw the
groups, not by the module: the render workers load the letters (and so
:func:`file_variants`) but never draw a group, and pandas alone is some 80 MiB
in each of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segmerge.errors import TemplateError
from segmerge.i18n import _, ngettext

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

VARIANT_FILE = re.compile(r"^(?P<segment>[^\W_][\w-]*)\.(?P<variant>[A-Za-z0-9]{1,8})\.html\.j2$")
_SCALE = float(2**64)


def file_variants(folder: Path, segment: str) -> list[str]:
    """Variant names of a segment's letter files, checked: two at least, no plain letter too."""
    found = sorted(
        m["variant"]
        for p in folder.glob(f"{segment}.*.html.j2")
        if (m := VARIANT_FILE.match(p.name)) and m["segment"] == segment
    )
    if not found:
        return []
    if len(found) == 1:
        only = found[0]
        raise TemplateError(
            _(
                "variant {variant} of segment {segment} has no twin: a test needs two letters"
            ).format(variant=only, segment=repr(segment)),
            file=folder / f"{segment}.{only}.html.j2",
            hint=_("add {segment}.B.html.j2 (or rename the file {segment}.html.j2)").format(
                segment=segment
            ),
        )
    if (folder / f"{segment}.html.j2").is_file():
        raise TemplateError(
            _("segment {segment} has both a letter and variants ({variants})").format(
                segment=repr(segment), variants=", ".join(found)
            ),
            file=folder / f"{segment}.html.j2",
            hint=_("keep either the one letter or the variant files"),
        )
    texts = [v for v in found if (folder / f"{segment}.{v}.txt.j2").is_file()]
    if texts and len(texts) != len(found):
        missing = sorted(set(found) - set(texts))
        raise TemplateError(
            ngettext(
                "variant {missing} of {segment} has no text twin while {others} do",
                "variants {missing} of {segment} have no text twin while {others} do",
                len(missing),
            ).format(missing=", ".join(missing), segment=repr(segment), others=", ".join(texts)),
            file=folder / f"{segment}.{missing[0]}.html.j2",
            hint=_("add {file}, or remove the other text twins").format(
                file=f"{segment}.{missing[0]}.txt.j2"
            ),
        )
    return found


def check_subject_variants(file: str, variants: Mapping[str, object]) -> None:
    if len(variants) == 1:
        only = next(iter(variants))
        raise TemplateError(
            _("subject.{variant} has no twin: a subject test needs two subject lines").format(
                variant=only
            ),
            file=file,
            field=f"subject.{only}",
            hint=_('add subject.B: "..." next to it'),
        )


def units(frame: pd.DataFrame) -> pd.Series:
    """What a group is drawn for, per contact row: its normalised address, or its id.

    Ids are marked (``#id``) so that an id can never collide with an address.
    """
    from segmerge.ports.addresses import normalise_column

    address, _valid = normalise_column(frame["email"])
    ids = "#" + frame["contact_id"].astype("string").fillna("")
    return address.astype("string").fillna(ids)


def choose(pick: np.ndarray, count: int) -> np.ndarray:
    """Which of ``count`` variants each hashed unit gets (an index into the names)."""
    import numpy as np

    return np.minimum((pick * count).astype(np.int64), count - 1)


def group_name(base: str, names: Sequence[str], variant: str | None) -> str:
    """The tag or list of a variant's group: the first variant keeps the segment's own
    name (``seg:fonceurs``), each other one adds its letter (``seg:fonceurs.B``), so a
    segment that gains a test keeps its list for the first letter."""
    if variant is None or not names or variant == names[0]:
        return base
    return f"{base}.{variant}"


def unit_hash(ids: pd.Series, salt: str) -> np.ndarray:
    """A number in [0, 1) per id, a pure function of (salt, id): stable across runs."""
    import numpy as np
    import pandas as pd

    keys = salt + "|" + ids.astype("string").fillna("")
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype=np.uint64)
    return hashed.astype(np.float64) / _SCALE


def assign(
    ids: pd.Series,
    segments: pd.Series,
    campaign: str,
    holdout: float,
    variants: Mapping[str, Sequence[str]],
) -> tuple[np.ndarray, pd.Series]:
    """(holdout mask, variant per contact: None where the segment has no variants)."""
    import numpy as np
    import pandas as pd

    in_holdout = (
        unit_hash(ids, f"{campaign}#holdout") < holdout
        if holdout
        else (np.zeros(len(ids), dtype=bool))
    )
    pick = unit_hash(ids, f"{campaign}#variant")
    out = pd.Series([None] * len(ids), index=ids.index, dtype=object)
    for seg, names in variants.items():
        if not names:
            continue
        # contacts in no segment hold NA: compare as a nullable column, NA is "not this one"
        rows = np.flatnonzero(segments.eq(seg).fillna(False).to_numpy(dtype=bool))
        choice = choose(pick[rows], len(names))
        out.iloc[rows] = np.asarray(names, dtype=object)[choice]
    return in_holdout, out
