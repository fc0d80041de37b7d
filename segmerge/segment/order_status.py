"""Which orders count as sales, read from the canonical orders `status` column.

A shop's export lists every order it ever took, cancelled and refunded ones
included; counted as revenue they put a wrong figure in a letter ("348,26 €,
6 commandes" where the shop says 278,32 €). So, by default, an order whose
status is a cancellation, a refund, a failed payment or a checkout that was
never placed is left out of every metric, for every source. The words are
those PrestaShop, WooCommerce, Shopify and Brevo use, French and English,
matched after folding case, accents, punctuation and WooCommerce's ``wc-``
prefix (``"wc-cancelled"``, ``"Annulé"`` and ``"CANCELED"`` are all a
cancellation).

Decisions, documented once:

- A partial refund (Shopify ``partially_refunded``) still counts: the customer
  did buy. The export's amount is the order's total; a shop that exports the
  refunded part apart has to net it out itself.
- An order awaiting payment (cheque, bank wire, cash on delivery, WooCommerce
  ``pending``, Shopify ``pending`` / ``authorized``) counts: most are paid, and
  those that are not become "cancelled" in the next export.
- A word nobody here knows counts (a shop's own states are usually steps of a
  sale) and is listed with its count as a warning, so the user decides with
  ``include_statuses`` / ``exclude_statuses`` on the source.

Sources of the vocabulary:
- PrestaShop: PrestaShop/PrestaShop@0e45caa:install-dev/data/xml/order_state.xml
  (states), @140a477:install-dev/langs/en/data/order_state.xml and
  @2fdb0cb:install-dev/langs/fr/data/order_state.xml (names); PrestaShop 8 names
  some of them differently in French ("Remboursé", "En attente du paiement par
  chèque"): both are listed.
- WooCommerce: ``wc_get_order_statuses()`` (woocommerce/includes/wc-order-functions.php:
  wc-pending, wc-processing, wc-on-hold, wc-completed, wc-cancelled, wc-refunded,
  wc-failed, wc-checkout-draft) and https://woocommerce.com/document/managing-orders/;
  the French labels are WooCommerce's fr_FR translation (translate.wordpress.org),
  not checked against a file here.
- Shopify: financial status, https://shopify.dev/docs/api/admin-graphql/latest/enums/OrderDisplayFinancialStatus
  (pending, authorized, partially_paid, paid, partially_refunded, refunded,
  voided, expired).
- Brevo: ``order.status`` is free text (brevo-v3.yml, example "completed").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from segmerge.workspace.sources import normalise

if TYPE_CHECKING:
    import pandas as pd


#: why an order does not count -> the words that say so (already normalised)
EXCLUDED: dict[str, tuple[str, ...]] = {
    "cancelled": (
        "cancelled",
        "canceled",
        "cancel",
        "annule",
        "annulee",
        "annulation",
        "voided",  # Shopify: authorised, never captured, then cancelled
    ),
    "refunded": ("refunded", "refund", "rembourse", "remboursee", "remboursement"),
    "payment failed": (
        "failed",
        "payment error",
        "payment failed",
        "payment declined",
        "declined",
        "erreur de paiement",
        "paiement refuse",
        "paiement echoue",
        "echoue",
        "echouee",
        "expired",  # Shopify: the authorisation lapsed before capture
    ),
    "never placed": ("checkout draft", "draft", "brouillon", "trash", "corbeille"),
}

#: words known to be steps of a sale: counted, and never warned about
COUNTED: frozenset[str] = frozenset(
    {
        # PrestaShop, English and French (1.6 to 8)
        "awaiting check payment",
        "awaiting cheque payment",
        "payment accepted",
        "processing in progress",
        "shipped",
        "delivered",
        "on backorder",
        "on backorder paid",
        "on backorder not paid",
        "awaiting bank wire payment",
        "awaiting paypal payment",
        "remote payment accepted",
        "awaiting cash on delivery validation",
        "en attente de paiement par cheque",
        "en attente du paiement par cheque",
        "paiement accepte",
        "en cours de preparation",
        "preparation en cours",
        "expedie",
        "livre",
        "en cours de reapprovisionnement",
        "en attente de reapprovisionnement paye",
        "en attente de reapprovisionnement non paye",
        "en attente de virement bancaire",
        "en attente du paiement par virement bancaire",
        "en attente de paiement paypal",
        "paiement a distance accepte",
        "en attente de paiement a la livraison",
        "en attente de validation du paiement a la livraison",
        # WooCommerce (slugs, English and French labels)
        "pending",
        "pending payment",
        "processing",
        "on hold",
        "completed",
        "attente paiement",
        "en cours",
        "en attente",
        "terminee",
        # Shopify financial and fulfillment statuses
        "authorized",
        "partially paid",
        "paid",
        "partially refunded",
        "fulfilled",
        "unfulfilled",
        "partial",
        "partially fulfilled",
        # Brevo and other platforms' plain words
        "complete",
        "confirmed",
        "open",
        "closed",
        "new",
    }
)


@dataclass(frozen=True)
class StatusRules:
    """The default vocabulary adjusted by a source's ``exclude_statuses`` / ``include_statuses``."""

    excluded: dict[str, str]  # normalised word -> rule name
    counted: frozenset[str]

    @classmethod
    def for_source(cls, exclude: Iterable[str] = (), include: Iterable[str] = ()) -> StatusRules:
        """Build the rules; the two lists were checked when the workspace was read
        (a word in both, or a blank word, is a config error there)."""
        exclude_n = [normalise(w) for w in exclude]
        include_n = [normalise(w) for w in include]
        excluded = {w: rule for rule, words in EXCLUDED.items() for w in words}
        for w in include_n:
            excluded.pop(w, None)
        for w in exclude_n:
            excluded[w] = "listed in exclude_statuses"
        return cls(excluded, COUNTED | frozenset(include_n))


@dataclass
class StatusReport:
    """What the status rules did to one source's orders, for `validate` and the run report."""

    total: int = 0
    #: rule -> {word as written in the data: orders}
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)
    #: words no rule knows, as written, with their counts (counted as sales)
    unknown: dict[str, int] = field(default_factory=dict)

    @property
    def left_out_count(self) -> int:
        return sum(sum(words.values()) for words in self.left_out.values())

    def note(self, source: str) -> str | None:
        if not self.left_out:
            return None
        parts = []
        for rule, words in self.left_out.items():
            listed = ", ".join(f"{w!r} {n:,}" for w, n in _biggest(words))
            parts.append(f"{sum(words.values()):,} {rule} ({listed})")
        return (
            f"{source}: {self.left_out_count:,} of {self.total:,} orders left out "
            f"by their status: {'; '.join(parts)}"
        )

    def warning(self, source: str) -> str | None:
        if not self.unknown:
            return None
        listed = ", ".join(f"{w!r} {n:,}" for w, n in _biggest(self.unknown))
        return (
            f"{source}: order statuses Segmerge does not know, counted as sales: {listed} "
            "(list them in the source's include_statuses to count them quietly, "
            "or in exclude_statuses to leave those orders out)"
        )


def _biggest(words: dict[str, int], shown: int = 8) -> list[tuple[str, int]]:
    ranked = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > shown:
        rest = sum(n for _, n in ranked[shown:])
        return [*ranked[:shown], (f"{len(ranked) - shown} more", rest)]
    return ranked


def counted_mask(status: pd.Series, rules: StatusRules) -> tuple[pd.Series, StatusReport]:
    """Which orders count (True), and the report; a missing status counts.

    Words are folded once per distinct value, never per order: a 10M-order
    export has a dozen distinct statuses.
    """
    import numpy as np
    import pandas as pd

    report = StatusReport(total=len(status))
    codes, uniques = pd.factorize(status.astype("string"), use_na_sentinel=True)
    if not len(uniques):
        return pd.Series(True, index=status.index), report
    per_code = pd.Series(codes).value_counts().to_dict()
    keep = [
        _fold(str(raw), int(per_code.get(code, 0)), rules, report)
        for code, raw in enumerate(uniques.tolist())
    ]
    lookup = np.array([*keep, True], dtype=bool)  # code -1 (no status) is the last entry
    return pd.Series(lookup[codes], index=status.index), report


def status_counts(
    counts: Iterable[tuple[object, int]], rules: StatusRules
) -> tuple[StatusReport, list[str]]:
    """The report and the status words left out, from each distinct status and its number
    of orders (a database's ``GROUP BY status``: the orders themselves never leave it)."""
    pairs = [(raw, int(n)) for raw, n in counts]
    report = StatusReport(total=sum(n for _, n in pairs))
    left_out = [
        str(raw) for raw, n in pairs if raw is not None and not _fold(str(raw), n, rules, report)
    ]
    return report, left_out


def _fold(raw: str, n: int, rules: StatusRules, report: StatusReport) -> bool:
    """Whether orders of status ``raw`` count; the ``n`` of them go into ``report``."""
    word = normalise(raw)
    if not word:
        return True
    rule = rules.excluded.get(word)
    if rule is not None:
        report.left_out.setdefault(rule, {})[raw] = n
        return False
    if word not in rules.counted:
        report.unknown[raw] = report.unknown.get(raw, 0) + n
    return True
