"""Presets read each shop's own exports: per-customer orders and revenue as the data set says.

The files are built in each shop's format from the CDNOW purchases
(tests/shop_exports.py); the expected figures come from a pandas groupby on the
same purchases, not from the connector.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.files import FilesConnector
from segmerge.errors import ConfigError, DataError, SegmergeError
from segmerge.ports.connector import ConnectorContext
from segmerge.ports.schema import Tables
from tests import shop_exports as shops


@pytest.fixture(scope="module")
def purchases() -> pd.DataFrame:
    """CDNOW's first 600 customers (a quarter): some 1,800 purchase lines hold every case
    the readers meet (line items, guests, cancellations) and cost a quarter to write and
    read three times over."""
    return shops.cdnow(limit=600)


@pytest.fixture(scope="module")
def exports(purchases, tmp_path_factory):
    """Each shop's workspace, built once: ``exports(shop)`` is its root (files in exports/)."""
    built: dict[str, Path] = {}

    def build(shop: str) -> Path:
        if shop not in built:
            root = tmp_path_factory.mktemp(shop)
            shops.BUILDERS[shop](purchases, root / "exports")
            built[shop] = root
        return built[shop]

    return build


@pytest.fixture(scope="module")
def pulled(exports):
    """``pulled(shop)``: the tables the shop's preset reads from its built exports, read
    once for the tests that only look at them (a read is most of what each costs)."""
    tables: dict[str, Tables] = {}

    def pull(shop: str) -> Tables:
        if shop not in tables:
            tables[shop] = read(exports(shop), preset=shop)
        return tables[shop]

    return pull


def read(root: Path, **settings: object) -> Tables:
    settings.setdefault("path", "exports")
    ctx = ConnectorContext(
        name="shop", settings=dict(settings), root=root, config_file=root / "segmerge.toml"
    )
    return FilesConnector(ctx).pull()


def per_customer(t: Tables) -> pd.DataFrame:
    return t.orders.groupby("contact_id").agg(
        orders=("order_id", "size"), revenue=("amount", "sum")
    )


def compare(got: pd.DataFrame, want: pd.DataFrame, ids: dict[int, str]) -> None:
    want = want.rename(index=ids)
    assert set(got.index) == set(want.index)
    got = got.loc[want.index]
    assert (got["orders"].to_numpy() == want["orders"].to_numpy()).all()
    np.testing.assert_allclose(got["revenue"], want["revenue"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("shop", ["prestashop", "woocommerce", "shopify"])
def test_each_preset_reads_its_shop_exports_as_the_data_set_says(pulled, purchases, shop):
    t = pulled(shop)
    want = shops.expected(purchases)
    if shop == "shopify":
        ids = {c: str(shops.SHOPIFY_ID + c) for c in want.index}  # the apostrophe is gone
    else:
        ids = {c: str(c) for c in want.index}
    assert len(t.contacts) == len(want)
    assert set(t.contacts["contact_id"]) == set(ids.values())
    assert t.orders["contact_id"].notna().all()  # every order found its customer
    compare(per_customer(t), want, ids)
    assert len(t.orders) == want["orders"].sum() == t.orders["order_id"].nunique()
    # the shop's own status words reach the engine, which decides what counts
    o = shops.orders_of(purchases)
    words = t.orders["status"].value_counts().to_dict()
    assert sum(words.values()) == len(o)
    cancelled = {
        "prestashop": {"Annulé", "Remboursé"},
        "woocommerce": {"cancelled", "refunded"},
        "shopify": {"voided", "refunded"},
    }[shop]
    assert sum(words.get(w, 0) for w in cancelled) == int(o["cancelled"].sum())
    assert not t.warnings


def test_prestashop_reads_the_newest_customers_export_and_says_so(tmp_path, exports, purchases):
    folder = tmp_path / "exports"
    shutil.copytree(exports("prestashop") / "exports", folder)  # this test's to touch
    old, new = folder / "customer_2026-11-01_090000.csv", folder / "customer_2026-12-01_101500.csv"
    os.utime(old, (1_700_000_000, 1_700_000_000))
    os.utime(new, (1_800_000_000, 1_800_000_000))
    t = read(tmp_path, preset="prestashop")
    assert len(t.contacts) == purchases["customer"].nunique()
    note = next(n for n in t.notes if "customer_*.csv" in n)
    assert "customer_2026-12-01_101500.csv" in note and "customer_2026-11-01_090000.csv" in note
    # the older file made newer (downloaded again) wins: newest by time, not by name
    os.utime(old, (1_900_000_000, 1_900_000_000))
    c = read(tmp_path, preset="prestashop").contacts
    assert len(c) == 3
    assert c["subscribed"].dtype == bool and c["created_at"].notna().all()
    assert set(c.columns) >= {"civilite", "ventes", "groupe"}


def test_prestashop_amounts_and_dates_are_read_as_exported(tmp_path, purchases):
    small = shops.cdnow(limit=5)
    shops.prestashop(small, tmp_path / "exports")
    t = read(tmp_path, preset="prestashop")
    o = shops.orders_of(small).set_index("order")
    got = t.orders.set_index("order_id")
    first = o.index[0]
    assert got.loc[str(first), "amount"] == pytest.approx(o.loc[first, "total"])
    when = got.loc[str(first), "ordered_at"].tz_convert("Europe/Paris")
    assert when.strftime("%Y%m%d %H:%M") == f"{o.loc[first, 'date']} 14:05"
    assert got.loc[str(first), "reference"] == f"REF{first:06d}"


def test_prestashop_16_sql_manager_export_is_read_too(tmp_path):
    """PrestaShop 1.6 quoted every value, ended each with `;` and the file without a newline."""
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "customer_2026-12-01_101500.csv").write_text(
        "ID;Adresse e-mail;Newsletter\n7;a@example.org;1\n", encoding="utf-8"
    )
    (folder / "request_sql_3.csv").write_text(
        "id_order;id_customer;date_add;total_paid_tax_incl;etat;\n"
        '"12";"7";"2026-11-30 18:02:11";"48.500000";"Paiement accepté";\n'
        '"13";"7";"2026-12-01 09:00:00";"10.000000";"Annulé";',
        encoding="utf-8",
    )
    t = read(tmp_path, preset="prestashop")
    assert t.orders["amount"].tolist() == [48.5, 10.0]
    assert t.orders["status"].tolist() == ["Paiement accepté", "Annulé"]
    assert t.orders["contact_id"].tolist() == ["7", "7"]


def test_shopify_totals_are_counted_once_per_order_whatever_its_line_items(
    exports, pulled, purchases
):
    lines = pd.read_csv(exports("shopify") / "exports" / "orders_export_1.csv", dtype=str)
    several = lines["Name"].duplicated(keep=False)
    assert several.any()  # the data set has orders of several lines
    t = pulled("shopify")
    assert len(t.orders) == lines["Name"].nunique() < len(lines)
    assert t.orders["amount"].sum() == pytest.approx(purchases["dollars"].sum())
    assert any("line-item rows belong to the order" in n for n in t.notes)


def test_a_shopify_export_split_in_parts_is_read_whole(exports, purchases, tmp_path):
    """Shopify sends a large orders export as orders_export_1.csv, orders_export_2.csv…"""
    whole = (exports("shopify") / "exports" / "orders_export_1.csv").read_text(encoding="utf-8")
    header, *rows = whole.splitlines(keepends=True)
    cut = next(
        i for i in range(len(rows) // 2, len(rows)) if rows[i].split(",")[2]
    )  # an order's first row
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "customers_export.csv").write_bytes(
        (exports("shopify") / "exports" / "customers_export.csv").read_bytes()
    )
    (folder / "orders_export_2.csv").write_text(header + "".join(rows[cut:]), encoding="utf-8")
    (folder / "orders_export_1.csv").write_text(header + "".join(rows[:cut]), encoding="utf-8")
    t = read(tmp_path, preset="shopify")
    compare(
        per_customer(t),
        shops.expected(purchases),
        {c: str(shops.SHOPIFY_ID + c) for c in purchases["customer"].unique()},
    )
    assert (
        "shop: reading orders_export_1.csv, orders_export_2.csv (one Shopify export in 2 parts)"
        in t.notes
    )
    assert t.origins["orders"] == "exports/orders_export_1.csv, exports/orders_export_2.csv"


def test_woocommerce_guest_orders_link_by_their_email(pulled, purchases):
    t = pulled("woocommerce")
    guests = shops.orders_of(purchases)["customer"] % 5 == 0
    assert guests.any()
    linked = next(n for n in t.notes if "linked to contacts by e-mail" in n)
    assert f"{int(guests.sum()):,} of {int(guests.sum()):,} orders" in linked


def test_a_preset_orders_export_that_names_no_buyer_says_how_to_get_one(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "customer_2026-12-01_101500.csv").write_text(
        "ID;Prénom;Nom;Adresse e-mail;Newsletter\n1;Thomas;Pottier;t@example.org;1\n"
    )
    # PrestaShop's orders grid export: the buyer is "T. Pottier", no id, no e-mail
    (folder / "request_sql_1.csv").write_text(
        'id_order;date_add;total_paid_tax_incl;Client;\n"1";"2026-12-01 10:00:00";"12.5";'
        '"T. Pottier";'
    )
    with pytest.raises(DataError) as info:
        read(tmp_path, preset="prestashop")
    err = info.value
    assert "no contact_id column and no email column" in str(err)
    assert "request_sql_1.csv" in str(err.file) and "SQL manager" in str(err.hint)


def test_a_preset_without_its_orders_export_is_an_error_naming_the_glob(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "customers_export.csv").write_text("Customer ID,Email\n'1,a@example.org\n")
    with pytest.raises(ConfigError) as info:
        read(tmp_path, preset="shopify")
    assert "'orders_export*.csv'" in str(info.value) and "exports" in str(info.value)
    assert "customers_export.csv" in str(info.value.hint)


def test_an_unknown_preset_is_refused_with_the_known_ones(tmp_path):
    (tmp_path / "exports").mkdir()
    with pytest.raises(ConfigError) as info:
        read(tmp_path, preset="magento")
    assert "prestashop" in str(info.value) and "shopify" in str(info.value)


# -- segmerge init --preset --------------------------------------------------------------


def invoke(*args: str):
    from typer.testing import CliRunner

    from bot import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.mark.parametrize("shop", ["prestashop", "woocommerce", "shopify"])
def test_init_preset_scaffolds_a_workspace_reading_that_shops_exports(tmp_path, shop):
    root = tmp_path / "boutique"
    r = invoke("init", str(root), "--preset", shop)
    assert r.exit_code == 0, r.output
    config = (root / "segmerge.toml").read_text(encoding="utf-8")
    assert f'preset = "{shop}"' in config and "[campaigns.rfm]" in config
    assert not (root / "examples").exists() and not (root / "presets").exists()
    assert (root / "segrules" / "rfm.yaml").is_file() and (root / "templates" / "rfm").is_dir()
    t = read(root, preset=shop)  # the source as the scaffold's config sets it
    assert len(t.contacts) == 80 and t.orders["contact_id"].notna().all()
    r = invoke("validate", "-w", str(root), "--as-of", "2026-12-01")
    assert r.exit_code == 0, r.output
    assert "rfm" in r.output


def test_init_copies_real_files_and_refuses_an_unknown_preset(tmp_path):
    r = invoke("init", str(tmp_path / "demo"))
    assert r.exit_code == 0, r.output
    links = [p for p in (tmp_path / "demo").rglob("*") if p.is_symlink()]
    assert not links and (tmp_path / "demo" / "examples" / "demo" / "orders.csv").is_file()
    assert not (tmp_path / "demo" / "presets").exists()
    r = invoke("init", str(tmp_path / "other"), "--preset", "magento")
    assert isinstance(r.exception, SegmergeError) and r.exception.exit_code == 2
    assert "prestashop, shopify, woocommerce" in str(r.exception.hint)
    assert not (tmp_path / "other").exists()


def test_the_scaffold_holds_no_links_and_the_repository_demo_as_it_is():
    """The package ships real files (a link into the repository breaks once installed);
    the repository's own demo workspace is the same, file for file."""
    repo = Path(__file__).resolve().parents[1]
    scaffold = repo / "segmerge" / "scaffold"
    assert not [p for p in scaffold.rglob("*") if p.is_symlink()]
    for part in ("segmerge.toml", "segrules", "templates", "examples/demo"):
        ours = scaffold / part
        pairs = (
            [(ours, repo / part)]
            if ours.is_file()
            else [(p, repo / part / p.relative_to(ours)) for p in ours.rglob("*") if p.is_file()]
        )
        for copy, original in pairs:
            assert copy.read_bytes() == original.read_bytes(), (
                f"{copy.relative_to(repo)} differs from {original.relative_to(repo)}: "
                "copy the repository's file into segmerge/scaffold"
            )


def test_a_shopify_row_repeating_an_order_number_with_its_own_total_is_kept_and_said(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "customers_export.csv").write_text(
        "Customer ID,Email\n'1,a@example.org\n", encoding="utf-8"
    )
    (folder / "orders_export_1.csv").write_text(
        "Name,Email,Financial Status,Created at,Lineitem quantity,Total\n"
        "#1001,a@example.org,paid,2026-12-01 10:00:00 +0100,1,30.00\n"
        "#1001,a@example.org,,,2,\n"  # a line item of the order above
        "#1001,a@example.org,paid,2026-12-02 10:00:00 +0100,1,12.00\n",  # another order, same name
        encoding="utf-8",
    )
    t = read(tmp_path, preset="shopify")
    assert t.orders["amount"].tolist() == [30.0, 12.0]
    (warning,) = t.warnings
    assert warning.startswith("exports/orders_export_1.csv, line 4: 1 rows repeat the number")
    assert any("1 line-item rows belong to the order on a row above" in n for n in t.notes)
