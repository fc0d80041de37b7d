"""Orders that name no contact: more than 1 % stops every command reading the source."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from bot import app
from segmerge.errors import DataError
from segmerge.preview.app import Preview
from segmerge.run.pipeline import RunOptions, run
from segmerge.segment.order_links import check_links
from segmerge.segment.segmentation import segment
from segmerge.workspace import config as wsmod
from tests.cli import segmerge as in_french
from tests.order_shop import AS_OF, rules, shop, sm

IDS = [str(i) for i in range(1, 11)]


def orders_for(owners: list[str]) -> list[tuple[str, str, float, str]]:
    return [(f"o{n}", cid, 10.0, "Livré") for n, cid in enumerate(owners, start=1)]


def test_a_prestashop_id_mix_up_is_exit_2_naming_the_file_count_and_three_examples(tmp_path):
    """The issue's case: customers and orders both have `ID`; mapped once, each order went
    to the customer whose id equals the order number, and `segment` said nothing."""
    root = shop(
        tmp_path,
        IDS,
        [],
        source='columns = { "ID" = "contact_id", "Date" = "ordered_at", '
        '"Total payé TTC" = "amount", "État" = "status" }',
    )
    data = root / "data"
    data.joinpath("contacts.csv").write_text(
        "ID,E-mail,Prénom\n" + "".join(f"{i},c{i}@example.org,C{i}\n" for i in IDS), "utf-8"
    )
    data.joinpath("orders.csv").write_text(
        "ID,ID client,Date,Total payé TTC,État\n"
        + "".join(f"{n},{1 + n % 10},2026-06-01,12.5,Livré\n" for n in range(1, 201)),
        "utf-8",
    )
    before = sorted(p.name for p in root.rglob("*"))
    proc = sm("segment", rules(root), "-w", str(root), "--as-of", AS_OF)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    msg = " ".join(proc.stderr.split())
    assert "data/orders.csv" in msg and "source shop" in msg
    assert "190 of 200 orders (95%) name a contact that is not in the contacts table" in msg
    # no order number is mapped, so line numbers stand in for it
    assert "e.g. order '12' (contact '11'), order '13' (contact '12'), order '14'" in msg
    assert 'on_unmatched_orders = "warn"' in msg
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing written


@pytest.fixture
def strays(tmp_path):
    """Ten customers, 100 orders, 5 of them naming customers the contacts file lacks."""
    owners = [IDS[n % 10] for n in range(95)] + ["77", "78", "79", "80", "81"]
    return shop(tmp_path, IDS, orders_for(owners))


def test_every_command_reading_the_source_stops(strays):
    ws = wsmod.load(strays)
    with pytest.raises(DataError, match=r"5 of 100 orders \(5%\)"):
        segment(ws, "segrules/lettre.yaml", as_of=AS_OF)
    with pytest.raises(DataError, match="order 'o96' \\(contact '77'\\)"):
        run(ws, "lettre", RunOptions(as_of=AS_OF, dry_run=True))
    w = ["-w", str(strays), "--as-of", AS_OF]
    for args in (
        ["validate", "lettre"],
        ["explain", rules(strays), "1"],
        ["report", rules(strays)],
        ["render", "lettre", "--contact", "1"],
    ):
        r = CliRunner().invoke(app, [*args, *w])
        assert isinstance(r.exception, DataError), (args, r.output)
        assert "5 of 100 orders" in str(r.exception)
    view = Preview(strays, as_of=AS_OF).campaign("lettre")  # the preview's page says why
    assert view is not None and view.camp is None and view.error is not None
    assert "5 of 100 orders" in view.error["message"]
    assert view.error["file"] == "data/orders.csv"
    assert not (strays / "outbox").exists()


def test_warn_lets_the_source_be_read_and_says_it(tmp_path):
    owners = [IDS[n % 10] for n in range(95)] + ["77", "78", "79", "80", "81"]
    root = shop(tmp_path, IDS, orders_for(owners), source='on_unmatched_orders = "warn"')
    r = CliRunner().invoke(
        app, ["segment", rules(root), "-w", str(root), "--as-of", AS_OF], env={"COLUMNS": "200"}
    )
    assert r.exit_code == 0, r.output
    assert (
        "shop (data/orders.csv): 5 of 100 orders (5%) name a contact that is not "
        "in the contacts table"
    ) in " ".join(r.output.split())
    assert "they count for nobody" in r.output
    seg = segment(wsmod.load(root), "segrules/lettre.yaml", as_of=AS_OF)
    assert seg.frame["orders_count"].sum() == 95  # the strays count for no one


def test_below_one_percent_segment_and_explain_warn(tmp_path):
    owners = [IDS[n % 10] for n in range(199)] + ["999"]  # one order for a stranger: 0.5 %
    root = shop(tmp_path, IDS, orders_for(owners))
    proc = sm("segment", rules(root), "-w", str(root), "--as-of", AS_OF, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "contact_id,segment"  # stdout stays pure CSV
    assert len(proc.stdout.splitlines()) == 11
    err = " ".join(proc.stderr.split())
    assert "1 of 200 orders (0.5%) names a contact" in err and "order 'o200' (contact '999')" in err
    r = CliRunner().invoke(
        app,
        ["explain", rules(root), "1", "-w", str(root), "--as-of", AS_OF],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "1 of 200 orders (0.5%)" in r.output


def frames(owners: list[str | None], emails: list[str | None] | None = None):
    orders = pd.DataFrame(
        {
            "order_id": pd.Series([f"o{i}" for i in range(len(owners))], dtype="string"),
            "contact_id": pd.Series(owners, dtype="string"),
        }
    )
    if emails is not None:
        orders["email"] = pd.Series(emails, dtype="string")
    return orders, pd.DataFrame({"contact_id": pd.Series(IDS, dtype="string")})


def test_one_percent_is_a_warning_more_is_an_error():
    orders, contacts = frames(["1"] * 99 + ["x"])
    assert "1 of 100 orders (1%)" in (check_links(orders, contacts, "s") or "")
    orders, contacts = frames(["1"] * 98 + ["x", "y"])
    with pytest.raises(DataError, match="2 of 100 orders"):
        check_links(orders, contacts, "s")


def test_an_order_linked_by_email_to_nobody_is_named_by_its_address():
    orders, contacts = frames(["1", None, None], [None, "ghost@example.org", None])
    with pytest.raises(DataError) as info:
        check_links(orders, contacts, "shop", origin="exports/orders_export_1.csv")
    assert info.value.file == "exports/orders_export_1.csv"
    assert "order 'o1' (e-mail 'ghost@example.org'), order 'o2' (no contact)" in str(info.value)


def test_no_orders_no_check():
    orders, contacts = frames([])
    assert check_links(orders, contacts, "s") is None


def test_a_french_shop_is_told_in_french(tmp_path):
    """The warning a French marketer reads: French words, French numbers and typography."""
    owners = [IDS[n % 10] for n in range(95)] + ["77", "78", "79", "80", "81"]
    root = shop(tmp_path, IDS, orders_for(owners), source='on_unmatched_orders = "warn"')
    proc = in_french(
        "segment", rules(root), "-w", str(root), "--as-of", AS_OF, env={"SEGMERGE_LANG": "fr"}
    )
    assert proc.returncode == 0, proc.stderr
    said = (proc.stdout + proc.stderr).replace("\n", " ")  # split() would eat U+202F
    assert (
        "5 commandes sur 100 (5\u202f%) nomment un contact absent de la table des contacts" in said
    )
    assert "par exemple commande 'o96' (contact '77')" in said
    assert "elles ne comptent pour personne" in said


def test_parquet_read_by_duckdb_names_the_orders_file_as_pandas_does(tmp_path):
    """The warning made from DuckDB's counts names the file, as the pandas pull's does."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    owners = [IDS[n % 10] for n in range(199)] + ["999"]
    root = shop(tmp_path, IDS, orders_for(owners))
    for name in ("contacts", "orders"):
        csv = root / "data" / f"{name}.csv"
        pq.write_table(pv.read_csv(csv), root / "data" / f"{name}.parquet")
        csv.unlink()
    said = {}
    for engine in ("duckdb", "pandas"):
        config = root / "segmerge.toml"
        text = config.read_text(encoding="utf-8").replace('engine = "duckdb"\n', "")
        if engine == "duckdb":
            text = text.replace('connector = "files"\n', 'connector = "files"\nengine = "duckdb"\n')
        config.write_text(text, encoding="utf-8")
        ran = in_french(
            "segment", rules(root), "-w", str(root), "--as-of", AS_OF, "--format", "csv"
        )
        assert ran.returncode == 0, ran.stderr
        said[engine] = " ".join(ran.stderr.split())
    assert "shop (data/orders.parquet): 1 of 200 orders" in said["duckdb"], said["duckdb"]
    assert said["duckdb"] == said["pandas"]
