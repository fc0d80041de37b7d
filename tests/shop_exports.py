"""Shop exports built from a public data set, in each shop's own file format.

The purchases are the CDNOW sample (Fader & Hardie's CD retailer, 1997-1998)
shipped in the `lifetimes` wheel (a test extra). The file is read through the
installed distribution's file list, without importing the package. Each
customer's purchases on one day make one order (several rows of a day are that
order's line items), and every 13th order is cancelled or refunded in the
shop's own words, so a reader that drops, doubles or mislinks rows shows up
against :func:`expected`, a plain pandas groupby of the same data.

Formats (see docs/connectors/files.md for the sources):
- PrestaShop 8: the customers export (`;`, French headers) and the SQL manager's
  export of the orders query (PHP's fputcsv with `;`: a value with a space is quoted);
- WooCommerce: Customer / Order / Coupon Export's default CSV columns; guest
  orders have customer_id 0 and link by billing_email;
- Shopify: customers_export.csv and orders_export_1.csv, one row per line item,
  the order's Email, Financial Status, Created at and Total on its first row only.
"""

from __future__ import annotations

import csv
import io
import os
from importlib.metadata import distribution
from pathlib import Path

import pandas as pd

SHOPIFY_ID = 7_000_000_000_000  # Shopify's customer ids are 13 digits


def cdnow(limit: int | None = None) -> pd.DataFrame:
    """The CDNOW sample: customer, date, cds, dollars, one row per purchase line."""
    path = Path(str(distribution("lifetimes").locate_file("lifetimes/datasets/CDNOW_sample.txt")))
    rows = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=["customer", "sample_id", "date", "cds", "dollars"],
        dtype={"customer": int, "sample_id": str, "date": str, "cds": int, "dollars": float},
    )
    rows = rows[rows["dollars"] > 0].reset_index(drop=True)  # a few returns have 0.00
    if limit is not None:
        keep = rows["customer"].drop_duplicates().head(limit)
        rows = rows[rows["customer"].isin(keep)].reset_index(drop=True)
    order = rows.groupby(["customer", "date"], sort=False).ngroup()
    rows["order"] = order + 1001
    rows["line"] = rows.groupby("order").cumcount()
    return rows


def orders_of(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per order: its customer, day, total and whether it is cancelled."""
    o = rows.groupby("order", sort=True).agg(
        customer=("customer", "first"), date=("date", "first"), total=("dollars", "sum")
    )
    o["cancelled"] = (o.index % 13) == 0
    return o.reset_index()


def expected(rows: pd.DataFrame) -> pd.DataFrame:
    """Per customer: number of orders and revenue, every order counted (status aside)."""
    o = orders_of(rows)
    return o.groupby("customer").agg(orders=("order", "size"), revenue=("total", "sum"))


def _iso(day: str, time: str = "12:00:00") -> str:
    return f"{day[:4]}-{day[4:6]}-{day[6:]} {time}"


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _email(customer: int) -> str:
    return f"client{customer:05d}@example.org"


def prestashop(rows: pd.DataFrame, folder: Path, older: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    orders = orders_of(rows)
    first = orders.groupby("customer")["date"].min()
    header = [
        "ID",
        "Titre",
        "Prénom",
        "Nom",
        "Adresse e-mail",
        "Groupe",
        "Société",
        "Ventes",
        "Activé",
        "Newsletter",
        "Offres partenaires",
        "Inscription",
        "Dernière visite",
    ]
    spent = orders.groupby("customer")["total"].sum()
    customers = [
        [
            str(c),
            "Mme" if c % 2 else "M.",
            "Client",
            f"N{c}",
            _email(c),
            "Client",
            "",
            f"{spent[c]:.2f}".replace(".", ",") + " €",
            "1",
            "1" if c % 3 else "0",
            "0",
            _iso(first[c], "09:30:00"),
            "",
        ]
        for c in sorted(first.index)
    ]
    newest = folder / "customer_2026-12-01_101500.csv"
    _write(newest, header, customers, delimiter=";")
    if older:  # an export of last month left in the folder: the newest file is read
        _write(folder / "customer_2026-11-01_090000.csv", header, customers[:3], delimiter=";")
        then = newest.stat().st_mtime_ns - 30 * 86400 * 10**9
        os.utime(folder / "customer_2026-11-01_090000.csv", ns=(then, then))
    keys = ["id_order", "reference", "id_customer", "email", "date_add", "total_paid_tax_incl"]
    keys.append("etat")
    lines = [_fputcsv(keys)]
    for o in orders.itertuples():
        state = ("Annulé" if o.order % 2 else "Remboursé") if o.cancelled else "Livré"
        values = [
            str(o.order),
            f"REF{o.order:06d}",
            str(o.customer),
            _email(o.customer),
            _iso(o.date, "14:05:00"),
            f"{o.total:.6f}",
            state,
        ]
        lines.append(_fputcsv(values))
    (folder / "request_sql_1.csv").write_text("".join(lines), encoding="utf-8")


def _fputcsv(values: list[str], sep: str = ";") -> str:
    """One line as PHP's fputcsv writes it (PrestaShop 8's SQL manager export): a value
    is quoted when it holds the separator, a quote, a space or a line break."""
    special = (sep, '"', " ", "\t", "\r", "\n", "\\")
    quoted = [
        '"' + v.replace('"', '""') + '"' if any(c in v for c in special) else v for v in values
    ]
    return sep.join(quoted) + "\n"


def woocommerce(rows: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    orders = orders_of(rows)
    first = orders.groupby("customer")["date"].min()
    _write(
        folder / "customers-export-2026-12-01-10-15-00.csv",
        ["customer_id", "first_name", "last_name", "user_login", "email", "date_registered"],
        [
            [str(c), "Client", f"N{c}", f"client{c}", _email(c), _iso(first[c], "08:00:00")]
            for c in sorted(first.index)
        ],
    )
    header = [
        "order_id",
        "order_number",
        "order_date",
        "status",
        "shipping_total",
        "order_total",
        "refunded_total",
        "order_currency",
        "customer_id",
        "billing_first_name",
        "billing_last_name",
        "billing_email",
    ]
    out = []
    for o in orders.itertuples():
        status = ("cancelled" if o.order % 2 else "refunded") if o.cancelled else "completed"
        guest = o.customer % 5 == 0  # a guest checkout: no account id, the e-mail links it
        out.append(
            [
                str(o.order),
                str(o.order),
                _iso(o.date),
                status,
                "0.00",
                f"{o.total:.2f}",
                f"{o.total:.2f}" if status == "refunded" else "0.00",
                "USD",
                "0" if guest else str(o.customer),
                "Client",
                f"N{o.customer}",
                _email(o.customer).upper() if guest else _email(o.customer),
            ]
        )
    _write(folder / "orders-export-2026-12-01-10-16-00.csv", header, out)


def shopify(rows: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    orders = orders_of(rows).set_index("order")
    customers = sorted(rows["customer"].unique())
    spent = orders.groupby("customer")["total"].sum()
    count = orders.groupby("customer").size()
    _write(
        folder / "customers_export.csv",
        [
            "Customer ID",
            "First Name",
            "Last Name",
            "Email",
            "Accepts Email Marketing",
            "Default Address Company",
            "Default Address Zip",
            "Phone",
            "Accepts SMS Marketing",
            "Total Spent",
            "Total Orders",
            "Note",
            "Tax Exempt",
            "Tags",
        ],
        [
            [
                f"'{SHOPIFY_ID + c}",
                "Client",
                f"N{c}",
                _email(c),
                "yes" if c % 3 else "no",
                "",
                f"'0{c % 9000 + 1000}",
                "",
                "no",
                f"{spent[c]:.2f}",
                str(count[c]),
                "",
                "no",
                "vip, newsletter" if c % 7 == 0 else "",
            ]
            for c in customers
        ],
    )
    header = [
        "Name",
        "Email",
        "Financial Status",
        "Paid at",
        "Fulfillment Status",
        "Fulfilled at",
        "Accepts Marketing",
        "Currency",
        "Subtotal",
        "Shipping",
        "Taxes",
        "Total",
        "Discount Code",
        "Discount Amount",
        "Shipping Method",
        "Created at",
        "Lineitem quantity",
        "Lineitem name",
        "Lineitem price",
        "Lineitem sku",
        "Billing Name",
        "Cancelled at",
        "Refunded Amount",
        "Id",
        "Tags",
    ]
    out = []
    by_order = orders.to_dict("index")
    for r in rows.sort_values(["order", "line"]).itertuples():
        o = by_order[r.order]
        item = [str(r.cds), f"CD x{r.cds}", f"{r.dollars / r.cds:.2f}", f"CD-{r.cds}"]
        if r.line:  # a line item row: the order's number and e-mail, nothing of its totals
            out.append(
                [
                    f"#{r.order}",
                    _email(r.customer),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    *item,
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            continue
        status = ("voided" if r.order % 2 else "refunded") if o["cancelled"] else "paid"
        stamp = _iso(o["date"], "10:00:00") + " -0500"
        out.append(
            [
                f"#{r.order}",
                _email(r.customer).title() if r.customer % 4 == 0 else _email(r.customer),
                status,
                stamp,
                "fulfilled",
                stamp,
                "yes",
                "USD",
                f"{o['total']:.2f}",
                "0.00",
                "0.00",
                f"{o['total']:.2f}",
                "",
                "0.00",
                "Standard",
                stamp,
                *item,
                f"Client N{r.customer}",
                stamp if o["cancelled"] else "",
                f"{o['total']:.2f}" if status == "refunded" else "0.00",
                str(900000 + r.order),
                "",
            ]
        )
    _write(folder / "orders_export_1.csv", header, out)


BUILDERS = {"prestashop": prestashop, "woocommerce": woocommerce, "shopify": shopify}


def recent(rows: pd.DataFrame, years: int = 28) -> pd.DataFrame:
    """The same purchases moved to 2025-2026 (1997 and 1998 have no 29 February either)."""
    moved = rows.copy()
    moved["date"] = (moved["date"].str[:4].astype(int) + years).astype(str) + moved["date"].str[4:]
    return moved


def main(target: Path) -> None:
    """Write the sample exports `segmerge init --preset` ships: the first 80 CDNOW customers.

    python -m tests.shop_exports segmerge/scaffold/presets
    """
    rows = recent(cdnow(limit=80))
    for shop, build in BUILDERS.items():
        folder = target / shop / "exports"
        for old in folder.glob("*.csv"):
            old.unlink()
        if build is prestashop:  # an installed copy's file times say nothing: one export only
            prestashop(rows, folder, older=False)
        else:
            build(rows, folder)
        print(f"{shop}: {', '.join(sorted(p.name for p in folder.iterdir()))}")


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]))
