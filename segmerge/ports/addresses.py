"""One address normalisation, used wherever two addresses are compared.

Consent only holds if ``alice@exam<soft hyphen>ple.org``, ``ａlice@example.org``
and ``Alice@EXAMPLE.org`` are recognised as the suppressed ``alice@example.org``:
mail servers deliver all of them to the same mailbox. So consent, the
suppression list, de-duplication, contact pressure, the ledger and test-send
all compare the form given here, and the letter goes to that same form (what
was checked is what is delivered).

The rule: Unicode NFKC; invisible format characters (category Cf: soft
hyphen, zero-width spaces and joiners, word joiner, BOM…) removed; surrounding
white space stripped; lower case (the product treats local parts as
case-insensitive); the domain in IDNA (UTS 46, non-transitional, via the
``idna`` package), so ``exämple.fr`` and ``xn--exmple-cua.fr`` are one domain.

An address that cannot be normalised is not guessed at: it comes back as
<NA> with a reason, and the contact is not mailed. That includes a non-ASCII
local part (``jörg@example.de``): it cannot be written in an SMTP envelope
without the SMTPUTF8 extension, which we do not negotiate, so it is reported
as "not deliverable without SMTPUTF8" rather than mangled. Every normalised
address passes :func:`segmerge.mail.message` 's own check (ASCII atext local part,
LDH domain with a dot).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

import idna

if TYPE_CHECKING:  # pandas is loaded where whole columns are handled, not to check one click
    import pandas as pd

#: what a plain address already in normal form looks like: such values (nearly all of
#: a real file) skip the per-value Python path
_PLAIN = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+"
)
#: RFC 5322 dot-atom local part, as segmerge.mail.message accepts it
_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

NO_AT = "not of the form name@domain"
CONTROL = "control character"
SPACE = "space inside"
LOCAL_PART = "invalid characters before the @"
SMTPUTF8 = "non-ASCII before the @: not deliverable without SMTPUTF8"
DOMAIN = "invalid domain"


class AddressError(ValueError):
    """Why an address cannot be used; the message is one of the reasons above."""


def normalise(value: str) -> str:
    """The one form of an address, or :class:`AddressError` saying why there is none."""
    result, problem = _normalise_cached(str(value))
    if problem is not None:
        raise AddressError(problem)
    assert result is not None
    return result


def normalised_or_none(value: object) -> str | None:
    """The normal form, or None when the value is missing or unusable (for sets of
    addresses read back from a store, where one bad entry must not stop the rest)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    pandas = sys.modules.get("pandas")  # a value can only be pandas' NA once pandas is loaded
    if pandas is not None and value is pandas.NA:
        return None
    result, _ = _normalise_cached(str(value))
    return result


#: from this many values a column is cheaper than one cached call each
_COLUMN_FROM = 256


def normalise_all(values: list[str]) -> list[str | None]:
    """The normal form of each value, None where there is none. A few values (what a
    click suppresses) never load pandas; many go through :func:`normalise_column`."""
    if len(values) < _COLUMN_FROM:
        return [normalised_or_none(v) for v in values]
    import pandas as pd

    normal, _ = normalise_column(pd.Series(values, dtype="string"))
    return [n if isinstance(n, str) else None for n in normal.tolist()]


def normalise_set(values: Iterable[str]) -> set[str]:
    """Stored addresses in normal form (an old ledger holds them only lower-cased);
    one that cannot be normalised is dropped: no contact can have it either."""
    import pandas as pd

    listed = list(values)
    if not listed:
        return set()
    normal, _ = normalise_column(pd.Series(listed, dtype="string"))
    return set(normal.dropna().tolist())


def normalise_column(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(normalised, problem) for a column of addresses, both ``string`` dtype.

    A missing or blank value is <NA> in both (it is "no address", not a bad one);
    an unusable one is <NA> with the reason in ``problem``. Plain ASCII addresses are
    done on the whole column; Python runs once per *distinct* other value.
    """
    import pandas as pd

    raw = series.astype("string")
    plain = raw.str.strip().str.lower()
    normal = plain.where(plain != "")
    problem = pd.Series(pd.NA, index=series.index, dtype="string")
    fast = normal.str.fullmatch(_PLAIN).fillna(True).astype(bool)
    fast &= ~normal.str.contains("xn--", regex=False).fillna(False).astype(bool)
    odd = ~fast.to_numpy()
    if odd.any():
        values = raw[odd]
        results = {v: _normalise_cached(v) for v in values.unique()}
        normal[odd] = values.map({v: r[0] for v, r in results.items()})
        problem[odd] = values.map({v: r[1] for v, r in results.items()})
    return normal.astype("string"), problem


@lru_cache(maxsize=65536)
def _normalise_cached(value: str) -> tuple[str | None, str | None]:
    text = _visible(value).strip()
    if not text:
        return None, None
    # lower case after NFKC too: a compatibility form can map to a capital (U+210C -> H)
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).lower())
    text = _visible(text).strip()
    if any(unicodedata.category(c) == "Cc" for c in text):
        return None, CONTROL
    if any(c.isspace() for c in text):
        return None, SPACE
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None, NO_AT
    if not local.isascii():
        return None, SMTPUTF8
    if not _LOCAL.fullmatch(local):
        return None, LOCAL_PART
    host = _domain(domain)
    if host is None:
        return None, DOMAIN
    return f"{local}@{host}", None


def _visible(text: str) -> str:
    """Without format characters (Cf): invisible, and ignored by the eye and the MTA."""
    if text.isascii():
        return text
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _domain(domain: str) -> str | None:
    """The domain in ASCII (IDNA A-labels), or None when it is not a usable host name."""
    domain = domain.removesuffix(".")
    if domain.isascii() and "xn--" not in domain:
        labels = domain.split(".")
    else:
        try:
            labels = idna.encode(domain, uts46=True).decode("ascii").split(".")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    if len(labels) < 2 or not all(_LDH_LABEL.fullmatch(label) for label in labels):
        return None
    return ".".join(labels)
