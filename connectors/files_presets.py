"""The standard exports of the shops our users have: PrestaShop, WooCommerce, Shopify.

A preset names each export's file, maps its headers to the canonical columns
and says how its rows are laid out, so that `preset = "prestashop"` reads a
back office's files as they are downloaded. Each format is taken from the
platform's own source or documentation; docs/connectors/files.md cites them.
The order statuses are passed through as the canonical `status` column in the
shop's own words; which of them are left out of the metrics is the engine's
rule (cancelled, refunded, failed payment...), the same for every source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PresetName = Literal["prestashop", "woocommerce", "shopify"]


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    #: each table's file, a glob: the newest match is read
    files: dict[str, str]
    #: each table's header -> canonical or attribute name (English and French headers)
    columns: dict[str, dict[str, str]]
    #: an order spans one row per line item, its totals on the first row only
    line_items: bool = False
    #: contact ids that mean "no account" (a guest checkout): such orders link by e-mail
    guest_ids: tuple[str, ...] = ()
    #: a leading apostrophe is the spreadsheet's "keep as text" mark, not data
    text_mark: bool = False
    #: a table's export split into numbered files, all read: the regex of a part's name
    parts: dict[str, str] = field(default_factory=dict)
    #: how to get an orders export that names its buyer, for the error when it does not
    orders_hint: str = ""


# PrestaShop 8, Sell > Customers > Export: CustomerController::exportAction
# (PrestaShop/PrestaShop@ee962a0465741bbdfdb30143da60154c3a4665fa:
# src/PrestaShopBundle/Controller/Admin/Sell/Customer/CustomerController.php),
# headers translated in the back office's language; file customer_<date>_<time>.csv.
# Orders: Advanced parameters > Database > SQL manager, export of the query given
# in docs/connectors/files.md: request_sql_<id>.csv written by PHP's fputcsv with the
# SQL manager's separator, `;` by default
# (PrestaShop/PrestaShop@e55cc7f5d8f87b1aae4e719c93a0e5146dea3eb2:
# src/Core/SqlManager/Exporter/SqlRequestExporter.php); 1.6's AdminRequestSqlController
# quoted every value and ended each with `;`: read as well.
PRESTASHOP = Preset(
    name="prestashop",
    label="PrestaShop",
    files={"contacts": "customer_*.csv", "orders": "request_sql_*.csv"},
    columns={
        "contacts": {
            "ID": "contact_id",
            "Social title": "civilite",
            "Titre": "civilite",
            "First name": "first_name",
            "Prénom": "first_name",
            "Last name": "last_name",
            "Nom": "last_name",
            "Email address": "email",
            "Adresse e-mail": "email",
            "Group": "groupe",
            "Groupe": "groupe",
            "Company": "societe",
            "Société": "societe",
            "Sales": "ventes",
            "Ventes": "ventes",
            "Enabled": "actif",
            "Activé": "actif",
            "Newsletter": "subscribed",
            "Partner offers": "offres_partenaires",
            "Offres partenaires": "offres_partenaires",
            "Registration": "created_at",
            "Inscription": "created_at",
            "Date d'inscription": "created_at",
            "Last visit": "derniere_visite",
            "Dernière visite": "derniere_visite",
        },
        "orders": {
            "id_order": "order_id",
            "reference": "reference",
            "id_customer": "contact_id",
            "email": "email",
            "date_add": "ordered_at",
            "total_paid_tax_incl": "amount",
            "etat": "status",
        },
    },
    orders_hint=(
        "PrestaShop's orders list export names the buyer only as 'T. Pottier'; export the "
        "orders from Advanced parameters > Database > SQL manager with the query in "
        "docs/connectors/files.md, which has id_customer and email"
    ),
)

# WooCommerce Customer / Order / Coupon Export (woocommerce.com extension), "Default"
# CSV formats: columns are the documented keys (order_id, order_date, status,
# order_total, customer_id, billing_email...; customer_id, first_name, email,
# date_registered...); files orders-export-<timestamp>.csv, customers-export-<timestamp>.csv.
# A guest checkout has customer_id 0.
WOOCOMMERCE = Preset(
    name="woocommerce",
    label="WooCommerce",
    files={"contacts": "customers-export*.csv", "orders": "orders-export*.csv"},
    columns={
        "contacts": {
            "customer_id": "contact_id",
            "first_name": "first_name",
            "last_name": "last_name",
            "email": "email",
            "date_registered": "created_at",
            "total_spent": "total_depense",
            "order_count": "nombre_commandes",
        },
        "orders": {
            "order_id": "order_id",
            "order_number": "numero",
            "order_date": "ordered_at",
            "status": "status",
            "order_total": "amount",
            "refunded_total": "rembourse",
            "customer_id": "contact_id",
            "billing_email": "email",
        },
    },
    guest_ids=("0",),
    orders_hint=(
        "export the orders with WooCommerce Customer / Order / Coupon Export in its Default "
        "CSV format, which has customer_id and billing_email"
    ),
)

# Shopify admin, Customers > Export (customers_export.csv) and Orders > Export
# (orders_export_1.csv): help.shopify.com/en/manual/customers/import-export-customers
# and help.shopify.com/en/manual/fulfillment/managing-orders/exporting-orders. An order
# spans one row per line item; its Email, Financial Status, Created at and Total sit
# on the first row. Customer ID and zip codes are written with a leading apostrophe.
# A large orders export comes as orders_export_1.csv, orders_export_2.csv…: all are read.
SHOPIFY = Preset(
    name="shopify",
    label="Shopify",
    files={"contacts": "customers_export*.csv", "orders": "orders_export*.csv"},
    columns={
        "contacts": {
            "Customer ID": "contact_id",
            "First Name": "first_name",
            "Last Name": "last_name",
            "Email": "email",
            "Accepts Email Marketing": "subscribed",
            "Accepts Marketing": "subscribed",
            "Tags": "shopify_tags",
            "Total Spent": "total_depense",
            "Total Orders": "nombre_commandes",
        },
        "orders": {
            "Name": "order_id",
            "Email": "email",
            "Financial Status": "status",
            "Created at": "ordered_at",
            "Total": "amount",
            "Refunded Amount": "rembourse",
            "Cancelled at": "annulee_le",
            "Tags": "shopify_tags",
            "Id": "shopify_id",
        },
    },
    line_items=True,
    text_mark=True,
    parts={"orders": r"orders_export_(\d+)\.csv"},
    orders_hint="export the orders from Shopify's Orders page (Export > CSV for Excel)",
)

PRESETS: dict[str, Preset] = {p.name: p for p in (PRESTASHOP, WOOCOMMERCE, SHOPIFY)}
