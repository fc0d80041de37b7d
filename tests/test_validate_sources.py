"""`validate` checks every source, `segment` says what it read, `--as-of` reads French dates."""

from __future__ import annotations

import pytest

from segmerge.cli.as_of import parse_as_of
from tests.cli import Ran, segmerge
from tests.order_shop import AS_OF, contacts_csv, orders_csv, rules, shop, sm

ARCHIVE = """
[sources.archive]
connector = "files"
path = "archive"
"""
ORDERS = [("a", "1", 120.0, "Livré"), ("b", "1", 30.0, "Annulé"), ("c", "2", 20.0, "wc-completed")]


def invoke(*args: str) -> Ran:
    return segmerge(*args)


def flat(text: str) -> str:
    return " ".join(text.split())


def with_archive(root, orders) -> None:
    (root / "archive").mkdir()
    (root / "archive" / "contacts.csv").write_text(contacts_csv(["1", "2", "3"]), "utf-8")
    (root / "archive" / "orders.csv").write_text(orders_csv(orders), "utf-8")


def test_validate_checks_a_source_no_campaign_uses(tmp_path):
    root = shop(tmp_path, ["1", "2"], ORDERS, extra=ARCHIVE)
    with_archive(
        root, [("x", "1", 5.0, "paid"), ("y", "2", 5.0, "refunded"), ("z", "3", 5.0, "Bientôt")]
    )
    r = invoke("validate", "-w", str(root), "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "✓ lettre: vip 1, autres 1" in out
    assert "shop: 1 of 3 orders left out by their status: 1 cancelled ('Annulé' 1)" in out
    assert (
        "✓ source archive (no campaign uses it): 3 contacts, 3 orders (2 counted), 0 events"
    ) in out
    assert "archive: 1 of 3 orders left out by their status: 1 refunded ('refunded' 1)" in out
    assert "archive: order statuses Segmerge does not know, counted as sales: 'Bientôt' 1" in out
    # naming one campaign checks that campaign only
    r = invoke("validate", "lettre", "-w", str(root), "--as-of", AS_OF)
    assert r.exit_code == 0 and "archive" not in r.output


def test_validate_stops_on_an_unused_source_whose_orders_link_to_nobody(tmp_path):
    root = shop(tmp_path, ["1", "2"], ORDERS, extra=ARCHIVE)
    with_archive(root, [("x", "1", 5.0, "paid"), ("y", "9", 5.0, "paid")])
    proc = sm("validate", "-w", str(root), "--as-of", AS_OF)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "✓ lettre" in proc.stdout  # the campaigns were checked first
    err = flat(proc.stderr)
    assert "archive/orders.csv: source archive: 1 of 2 orders (50%) names a contact" in err
    assert "order 'y' (contact '9')" in err and "Traceback" not in err


def test_segment_and_explain_say_which_source_they_read(tmp_path):
    root = shop(tmp_path, ["1", "2"], ORDERS)
    r = invoke("segment", rules(root), "-w", str(root), "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("source shop, the source of campaign lettre (--source to choose)")
    r = invoke("segment", rules(root), "--source", "shop", "-w", str(root), "--as-of", AS_OF)
    assert "--source to choose" not in r.output  # the user named it
    other = root / "segrules" / "autre.yaml"
    other.write_text((root / "segrules" / "lettre.yaml").read_text().replace("lettre", "autre"))
    r = invoke("explain", str(other), "1", "-w", str(root), "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("source shop, the workspace's only source (--source to choose)")


def test_as_of_reads_day_first_dates_and_a_run_is_the_same_whichever_form(tmp_path):
    root = shop(tmp_path, ["1", "2"], ORDERS)
    for day in ("01/12/2026", "1/12/2026", "01.12.2026", AS_OF):
        r = invoke("run", "lettre", "--dry-run", "--as-of", day, "-w", str(root))
        assert r.exit_code == 0, r.output
        assert "lettre@2026-12-01" in r.output, day


@pytest.mark.parametrize(
    ("given", "iso"),
    [
        ("01/12/2026", "2026-12-01"),
        ("5/6/2026", "2026-06-05"),
        ("31-12-2026", "2026-12-31"),
        ("2026/12/1", "2026-12-01"),
        ("2026-12-01", "2026-12-01"),
        ("2026-12-01 09:30", "2026-12-01 09:30"),
    ],
)
def test_day_first_forms(given, iso):
    assert parse_as_of(given) == iso


def test_impossible_or_ambiguous_days_are_exit_2_with_what_to_write(tmp_path):
    root = shop(tmp_path, ["1"], [("a", "1", 1.0, "paid")])
    r = invoke("segment", rules(root), "-w", str(root), "--as-of", "12/31/2026")
    assert r.exit_code == 2
    assert "dates are read day first, DD/MM/YYYY (did you mean 31/12/2026?)" in flat(r.output)
    r = invoke("segment", rules(root), "-w", str(root), "--as-of", "01/12/26")
    assert r.exit_code == 2 and "write the year in full" in flat(r.output)
    for bad in ("30/02/2026", "2026/13/01"):
        with pytest.raises(ValueError, match="not a day"):
            parse_as_of(bad)
