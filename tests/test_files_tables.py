"""Per-file tables of a files source: own file (or glob), own mapping, own reading settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.files import FilesConnector
from segmerge.errors import ConfigError, DataError
from segmerge.ports.connector import ConnectorContext
from segmerge.ports.schema import Tables

# PrestaShop: the customer id and the order id are both `ID`
CUSTOMERS = "ID;Adresse e-mail;Newsletter\n1;anne@example.org;1\n2;bruno@example.org;0\n"
ORDERS = (
    "ID;ID client;Date;Total;État\n"
    "1;2;01/12/2026;10,00;Livré\n"
    "2;2;02/12/2026;20,00;Annulé\n"
    "3;1;03/12/2026;30,00;Livré\n"
)


def connector(root: Path, **settings: object) -> FilesConnector:
    settings.setdefault("path", "exports")
    ctx = ConnectorContext(
        name="shop", settings=dict(settings), root=root, config_file=root / "segmerge.toml"
    )
    return FilesConnector(ctx)


def read(root: Path, **settings: object) -> Tables:
    return connector(root, **settings).pull()


def put(root: Path, name: str, text: str, encoding: str = "utf-8", mtime: int | None = None):
    path = root / "exports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def revenue(t: Tables) -> dict[str, float]:
    return t.orders.groupby("contact_id")["amount"].sum().to_dict()


def test_one_mapping_per_file_joins_orders_to_the_right_customers(tmp_path):
    put(tmp_path, "clients.csv", CUSTOMERS)
    put(tmp_path, "commandes.csv", ORDERS)
    t = read(
        tmp_path,
        contacts={
            "file": "clients.csv",
            "columns": {"ID": "contact_id", "Adresse e-mail": "email"},
        },
        orders={
            "file": "commandes.csv",
            "columns": {
                "ID": "order_id",
                "ID client": "contact_id",
                "Date": "ordered_at",
                "Total": "amount",
                "État": "status",
            },
        },
    )
    assert revenue(t) == {"1": 30.0, "2": 30.0}
    assert list(t.orders["order_id"]) == ["1", "2", "3"]
    assert list(t.orders["status"]) == ["Livré", "Annulé", "Livré"]
    assert t.origins == {"contacts": "exports/clients.csv", "orders": "exports/commandes.csv"}


def test_the_flat_form_still_works_and_a_table_mapping_overrides_it_for_its_file(tmp_path):
    put(tmp_path, "clients.csv", CUSTOMERS)
    put(tmp_path, "commandes.csv", ORDERS)
    flat = {"ID": "contact_id", "Adresse e-mail": "email", "Total": "amount", "Date": "ordered_at"}
    # the flat form: one mapping for both files; `ID` is then the customer in both (the bug)
    t = read(tmp_path, contacts="clients.csv", orders="commandes.csv", columns=flat)
    assert len(t.contacts) == 2 and t.orders["contact_id"].tolist() == ["1", "2", "3"]
    # the orders' own mapping overrides the top-level one, header by header, for that file
    orders = {"file": "commandes.csv", "columns": {"ID": "order_id", "ID client": "contact_id"}}
    t = read(tmp_path, contacts="clients.csv", columns=flat, orders=orders)
    assert revenue(t) == {"1": 30.0, "2": 30.0}  # `Total` and `Date` still mapped from the top
    assert t.contacts["email"].tolist() == ["anne@example.org", "bruno@example.org"]
    assert t.contacts["contact_id"].tolist() == ["1", "2"]
    # a header the table's mapping names but its file lacks is noted with the file
    orders["columns"] = {**orders["columns"], "N° facture": "invoice"}
    t = read(tmp_path, contacts="clients.csv", columns=flat, orders=orders)
    assert "exports/commandes.csv: `columns` names headers it does not have: ['N° facture']" in (
        t.notes
    )


def test_a_glob_reads_the_newest_match_and_names_it(tmp_path):
    put(tmp_path, "customer_2026-11-01.csv", "ID;Adresse e-mail\n9;old@example.org\n", mtime=10**9)
    put(tmp_path, "customer_2026-12-01.csv", CUSTOMERS, mtime=2 * 10**9)
    t = read(tmp_path, contacts={"file": "customer_*.csv", "columns": {"ID": "contact_id"}})
    assert t.contacts["contact_id"].tolist() == ["1", "2"]
    assert any(
        "reading the newest, customer_2026-12-01.csv (not customer_2026-11-01.csv)" in n
        for n in t.notes
    )
    assert t.origins["contacts"] == "exports/customer_2026-12-01.csv"
    # the flat form takes a glob too
    t = read(tmp_path, contacts="customer_*.csv", columns={"ID": "contact_id"})
    assert t.contacts["contact_id"].tolist() == ["1", "2"]


def test_a_glob_matching_nothing_names_the_glob_and_the_folder(tmp_path):
    put(tmp_path, "clients.csv", CUSTOMERS)
    with pytest.raises(ConfigError) as info:
        read(tmp_path, contacts={"file": "customer_*.csv"})
    err = info.value
    assert "'customer_*.csv'" in str(err) and "'exports'" in str(err)
    assert err.field == "shop.contacts" and "clients.csv" in str(err.hint)


def test_each_file_has_its_own_encoding_delimiter_and_bad_rows_rule(tmp_path):
    put(tmp_path, "contacts.csv", "contact_id,email\n1,a@example.org\n2,b@example.org\n")
    put(
        tmp_path,
        "orders.csv",
        "contact_id|ordered_at|amount|ville\n1|01/12/2026|12,5|Sète\n2|31/02/2026|3|Agde\n",
        encoding="cp1252",
    )
    orders = {"file": "orders.csv", "encoding": "cp1252", "delimiter": "|"}
    with pytest.raises(DataError) as info:
        read(tmp_path, orders=orders)
    assert info.value.line == 3 and info.value.column == 2
    t = read(tmp_path, orders={**orders, "on_bad_rows": "skip"})
    assert t.orders["ville"].tolist() == ["Sète"] and t.skipped == {"exports/orders.csv": 1}


def test_each_excel_file_has_its_own_sheet(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["nothing here"])
    sheet = book.create_sheet("Clients")
    for row in (["N° client", "E-mail"], [1, "a@example.org"], [2, "b@example.org"]):
        sheet.append(row)
    (tmp_path / "exports").mkdir()
    book.save(tmp_path / "exports" / "export.xlsx")
    put(tmp_path, "orders.csv", "contact_id;ordered_at;amount\n2;01/12/2026;5\n")
    t = read(
        tmp_path,
        sheet="Notes",  # the top level's sheet, overridden by the table's
        contacts={
            "file": "export.xlsx",
            "sheet": "Clients",
            "columns": {"N° client": "contact_id"},
        },
    )
    assert t.contacts["contact_id"].tolist() == ["1", "2"] and len(t.orders) == 1


def test_a_table_setting_nobody_knows_is_an_error_naming_it(tmp_path):
    put(tmp_path, "clients.csv", CUSTOMERS)
    with pytest.raises(ConfigError) as info:
        connector(tmp_path, contacts={"file": "clients.csv", "colums": {}})
    assert info.value.field == "shop.contacts.colums"


def test_orders_without_customer_id_link_by_normalised_email(tmp_path):
    put(tmp_path, "contacts.csv", "contact_id;email\n1;Anne@Example.org\n2;bruno@exämple.fr\n")
    put(
        tmp_path,
        "orders.csv",
        "email;ordered_at;amount\n"
        " ANNE@example.ORG ;01/12/2026;10\n"
        "bruno@xn--exmple-cua.fr;02/12/2026;20\n"
        "carole@example.org;03/12/2026;5\n",
    )
    t = read(tmp_path)
    assert t.orders["contact_id"].tolist()[:2] == ["1", "2"]
    assert t.orders["contact_id"].isna().tolist() == [False, False, True]  # for the engine
    assert "exports/orders.csv: 2 of 3 orders linked to contacts by e-mail" in t.notes


def test_an_orders_file_naming_no_buyer_is_an_error_saying_what_is_missing(tmp_path):
    put(tmp_path, "contacts.csv", CUSTOMERS)
    put(tmp_path, "orders.csv", "Commande;Client;Date;Total\n1;T. Pottier;01/12/2026;10\n")
    with pytest.raises(DataError) as info:
        read(tmp_path, columns={"Date": "ordered_at", "Total": "amount", "ID": "contact_id"})
    err = info.value
    assert err.file == "exports/orders.csv" and err.line == 1
    assert "no contact_id column and no email column" in str(err)
    assert "contact_id" in str(err.hint)


def test_an_order_with_neither_id_nor_email_is_a_bad_row_with_its_line(tmp_path):
    put(tmp_path, "contacts.csv", "contact_id;email\n1;a@example.org\n")
    put(
        tmp_path,
        "orders.csv",
        "contact_id;email;ordered_at;amount\n;a@example.org;01/12/2026;1\n;;02/12/2026;2\n",
    )
    with pytest.raises(DataError) as info:
        read(tmp_path)
    assert info.value.line == 3 and "customer id, or an e-mail" in str(info.value)


@pytest.mark.parametrize("cell", ["1,234", "1.234 €", "2.500"])
def test_an_amount_with_three_digits_after_one_separator_is_a_warning_with_its_place(
    tmp_path, cell
):
    put(tmp_path, "contacts.csv", "contact_id\n1\n")
    put(
        tmp_path,
        "orders.csv",
        f"contact_id;ordered_at;Montant\n1;01/12/2026;12,50\n1;02/12/2026;{cell}\n",
    )
    t = read(tmp_path, columns={"Montant": "amount"})
    (warning,) = t.warnings
    assert warning.startswith("exports/orders.csv, line 3, column 3 (Montant)")
    assert repr(cell) in warning and "thousand" in warning
    value = float(cell.split()[0].replace(",", "."))
    assert t.orders["amount"].tolist() == [12.5, value]  # read as a decimal, and said


def test_plain_amounts_give_no_warning(tmp_path):
    put(tmp_path, "contacts.csv", "contact_id\n1\n")
    put(
        tmp_path,
        "orders.csv",
        "contact_id;ordered_at;amount\n1;01/12/2026;1 234,50 €\n1;02/12/2026;0,125\n"
        "1;03/12/2026;29.900000\n",
    )
    t = read(tmp_path)
    assert not t.warnings and t.orders["amount"].tolist() == [1234.5, 0.125, 29.9]


def test_the_docs_name_every_setting_and_preset():
    from connectors.files_presets import PRESETS
    from connectors.files_tables import FilesSettings, FileTable

    docs = (Path(__file__).resolve().parents[1] / "docs" / "connectors" / "files.md").read_text(
        encoding="utf-8"
    )
    for name in {*FilesSettings.model_fields, *FileTable.model_fields}:
        assert f"`{name}`" in docs, name
    for engine_setting in ("on_unmatched_orders", "exclude_statuses", "include_statuses"):
        assert f"`{engine_setting}`" in docs
    for preset in PRESETS:
        assert f'preset = "{preset}"' in docs
