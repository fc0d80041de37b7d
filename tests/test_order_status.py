"""Cancelled, refunded and failed orders count for no metric, in every shop's words."""

from __future__ import annotations

import pandas as pd
import pytest

from segmerge.errors import ConfigError
from segmerge.ports.schema import Tables, conform
from segmerge.segment.order_status import StatusRules, counted_mask, normalise
from segmerge.segment.segmentation import segment
from segmerge.workspace import config as wsmod
from tests.order_shop import AS_OF, shop

# one customer per shop; each has one order that counts (100) and the others that do not
PRESTASHOP = [
    ("p1", "1", 100.0, "Livré"),
    ("p2", "1", 40.0, "Annulé"),
    ("p3", "1", 30.0, "Remboursé"),
    ("p4", "1", 20.0, "Erreur de paiement"),
    ("p5", "1", 10.0, "Paiement refusé"),
]
WOOCOMMERCE = [
    ("w1", "2", 100.0, "wc-completed"),
    ("w2", "2", 40.0, "wc-cancelled"),
    ("w3", "2", 30.0, "wc-refunded"),
    ("w4", "2", 20.0, "wc-failed"),
    ("w5", "2", 10.0, "wc-checkout-draft"),
]
SHOPIFY = [
    ("s1", "3", 100.0, "paid"),
    ("s2", "3", 40.0, "voided"),
    ("s3", "3", 30.0, "refunded"),
    ("s4", "3", 20.0, "expired"),
    ("s5", "3", 10.0, "CANCELED"),
]


def frame_of(seg) -> pd.DataFrame:
    return seg.frame.set_index("contact_id")


def test_cancelled_refunded_and_failed_orders_count_for_no_metric(tmp_path):
    root = shop(tmp_path, ["1", "2", "3"], PRESTASHOP + WOOCOMMERCE + SHOPIFY)
    seg = segment(wsmod.load(root), "segrules/lettre.yaml", as_of=AS_OF)
    f = frame_of(seg)
    for cid in ("1", "2", "3"):
        assert f.loc[cid, "orders_count"] == 1, cid
        assert f.loc[cid, "revenue"] == 100.0, cid
    # the tables as pulled keep every order: a snapshot saved from them stays whole
    assert len(seg.tables.orders) == 15
    note = next(n for n in seg.tables.notes if "left out by their status" in n)
    assert note.startswith("shop: 12 of 15 orders left out by their status: ")
    assert "4 cancelled ('Annulé' 1, 'CANCELED' 1, 'voided' 1, 'wc-cancelled' 1)" in note
    assert "3 refunded ('Remboursé' 1, 'refunded' 1, 'wc-refunded' 1)" in note
    assert "4 payment failed (" in note and "'Paiement refusé' 1" in note
    assert "1 never placed ('wc-checkout-draft' 1)" in note
    assert seg.tables.warnings == []  # every word was known


def test_orders_without_a_status_column_all_count_and_a_note_says_so(tmp_path):
    root = shop(tmp_path, ["1"], [("a", "1", 100.0, "Annulé")])
    orders = root / "data" / "orders.csv"
    orders.write_text(orders.read_text().replace(",status", ",etat"))
    seg = segment(wsmod.load(root), "segrules/lettre.yaml", as_of=AS_OF)
    assert frame_of(seg).loc["1", "revenue"] == 100.0
    assert any(
        n.startswith("shop: the orders have no status column, so every order counts")
        for n in seg.tables.notes
    )


def test_partial_refunds_and_orders_awaiting_payment_still_count():
    rules = StatusRules.for_source()
    words = [
        "partially_refunded",
        "En attente du paiement par chèque",
        "wc-pending",
        "authorized",
        "wc-on-hold",
        "Paiement accepté",
        None,
    ]
    mask, report = counted_mask(pd.Series(words, dtype="string"), rules)
    assert mask.all()
    assert report.left_out == {} and report.unknown == {}


def test_include_and_exclude_statuses_change_what_counts(tmp_path):
    orders = [
        ("a", "1", 100.0, "Livré"),
        ("b", "1", 50.0, "Remboursé"),
        ("c", "1", 7.0, "En attente de virement bancaire"),
    ]
    root = shop(
        tmp_path,
        ["1"],
        orders,
        source="""
        include_statuses = ["remboursé"]
        exclude_statuses = ["EN ATTENTE DE VIREMENT BANCAIRE"]
    """,
    )
    seg = segment(wsmod.load(root), "segrules/lettre.yaml", as_of=AS_OF)
    assert frame_of(seg).loc["1", "revenue"] == 150.0
    note = next(n for n in seg.tables.notes if "left out by their status" in n)
    assert "1 listed in exclude_statuses ('En attente de virement bancaire' 1)" in note


def test_unknown_status_words_count_and_are_a_warning_with_their_counts(tmp_path):
    orders = [
        ("a", "1", 60.0, "Livré"),
        ("b", "1", 30.0, "Colis perdu"),
        ("c", "1", 20.0, "Colis perdu"),
        ("d", "1", 5.0, "Retour client"),
    ]
    root = shop(tmp_path, ["1"], orders)
    seg = segment(wsmod.load(root), "segrules/lettre.yaml", as_of=AS_OF)
    assert frame_of(seg).loc["1", "revenue"] == 115.0  # counted: the user decides
    [warning] = seg.tables.warnings
    assert "'Colis perdu' 2, 'Retour client' 1" in warning
    assert "include_statuses" in warning and "exclude_statuses" in warning
    assert warning in seg.tables.notes  # `run` and `validate` show it too


def test_a_word_in_both_lists_is_a_config_error_at_its_line(tmp_path):
    root = shop(
        tmp_path,
        ["1"],
        [("a", "1", 1.0, "Livré")],
        source="""
        exclude_statuses = ["Remboursé"]
        include_statuses = ["REMBOURSE"]
    """,
    )
    with pytest.raises(ConfigError) as info:
        wsmod.load(root)
    assert "'REMBOURSE' is both in exclude_statuses and include_statuses" in str(info.value)
    assert info.value.field == "sources.shop"
    assert info.value.line == 7  # the [sources.shop] table


def test_words_are_matched_after_folding_case_accents_and_prefixes():
    assert normalise("  ANNULÉE ") == normalise("annulee")
    assert normalise("wc-cancelled") == normalise("Cancelled") == "cancelled"
    assert normalise("partially_refunded") == "partially refunded"
    assert normalise("Erreur  de paiement.") == "erreur de paiement"


def test_status_is_a_canonical_orders_column():
    orders = pd.DataFrame(
        {
            "contact_id": ["1"],
            "order_id": ["a"],
            "ordered_at": ["2026-01-01"],
            "amount": [1.0],
            "status": [3],
        }
    )
    out = conform(Tables(pd.DataFrame({"contact_id": ["1"]}), orders), source="s")
    assert isinstance(out.orders["status"].dtype, pd.StringDtype)
    assert out.orders["status"].tolist() == ["3"]


def test_kpi_counts_no_revenue_from_a_cancelled_order(tmp_path):
    from segmerge.report.kpi import kpi
    from segmerge.run.pipeline import RunOptions, run

    root = shop(tmp_path, ["1", "2"], [("a", "1", 120.0, "Livré")])
    run(wsmod.load(root), "lettre", RunOptions(as_of=AS_OF))
    ws = wsmod.load(root)
    sent = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1)  # after the send, in the window
    day = sent.tz_convert("Europe/Paris").strftime("%d/%m/%Y %H:%M")
    with open(root / "data" / "orders.csv", "a", encoding="utf-8") as fh:
        fh.write(f"k1,2,{day},50,Livré\nk2,2,{day},70,Annulé\n")
    groups = {g.name: g for g in kpi(ws, "lettre", window=14).groups}
    assert groups["autres"].n == 1
    assert groups["autres"].revenue_per_recipient == pytest.approx(50.0)
