"""What a Parquet file holds is data on the DuckDB path, and a file pandas reads with
defaults stays with pandas.

A file or column name an attacker chose (a quote, a statement after it) is quoted as a
name, never run; a contacts file without an e-mail or consent column, which the pandas
pull fills with its defaults (no address, no consent), is read by pandas rather than
refused by the plan.
"""

from pathlib import Path

import pandas as pd
from test_files_duckdb import dialect, segment_both, set_engine, workspace

from tests.cli import segmerge

EVIL = "x'); copy (select 1) to 'pwned.csv'; --"
#: the name the pull gives that header (files_read.header_names), on both paths
EVIL_READ_AS = "x_copy_select_1_to_pwned_csv"


def _orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": ["o1", "o2"],
            "contact_id": ["c1", "c2"],
            "ordered_at": pd.to_datetime(["2026-06-01", "2026-06-02"], utc=True),
            "amount": [10.0, 20.0],
        }
    )


def test_quotes_in_file_and_column_names_are_read_as_names(tmp_path: Path) -> None:
    contacts = pd.DataFrame(
        {
            "contact_id": ["c1", "c2"],
            "email": ["a@x.org", "b@x.org"],
            "subscribed": [True, False],
            EVIL: ["un", "deux"],
        }
    )
    root = workspace(tmp_path / "ws", contacts, _orders())
    data = root / "data"
    odd = "it's contacts.parquet"
    (data / "contacts.parquet").rename(data / odd)
    config = root / "segmerge.toml"
    config.write_text(config.read_text().replace('"contacts.parquet"', f'"{odd}"'))
    # segment_both asserts DuckDB segmented the first
    ours, pandas = segment_both(root, "rfm.yaml", "--columns", EVIL_READ_AS)
    assert ours == pandas
    assert ours.splitlines()[1:] == [b"c1,endormis,un", b"c2,,deux"]  # c2 has no consent
    assert not list(root.rglob("pwned.csv")) and not Path("pwned.csv").exists()


def test_contacts_without_consent_or_email_columns_are_read_by_pandas(tmp_path: Path) -> None:
    contacts = pd.DataFrame({"contact_id": ["c1", "c2"], "email": ["a@x.org", "b@x.org"]})
    root = workspace(tmp_path / "ws", contacts, _orders())
    assert dialect(root) is None
    ran = segmerge(
        "segment", "segrules/rfm.yaml", "--as-of", "2026-07-01", "--format", "csv", cwd=root
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[1:] == ["c1,", "c2,"]  # no consent: excluded, not refused
    set_engine(root, "duckdb")
    refused = segmerge("segment", "segrules/rfm.yaml", "--as-of", "2026-07-01", cwd=root)
    assert refused.returncode == 2
    assert "subscribed" in refused.stderr
