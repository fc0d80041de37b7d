"""The smtp destination against a real SMTP server (aiosmtpd) on 127.0.0.1.

The connector is exercised alone (answers, reconnects, TLS, login, throttle)
and through the real pipeline and CLI: what reaches the server, what the
ledger and `segmerge history` say, and what the user reads on failure.
"""

from __future__ import annotations

import csv
import io
import smtplib
import sqlite3
import time
from email.message import Message
from pathlib import Path

import pytest
from cli import Ran, segmerge
from smtp_server import SmtpServer, free_port, make_workspace, tls_available

from connectors.smtp import SmtpConnector
from connectors.smtp_throttle import Throttle
from segmerge.errors import ConfigError, ConnectorError, CredentialError
from segmerge.mail.message import message_id_for
from segmerge.ports.connector import Action, ConnectorContext
from segmerge.run.pipeline import RunOptions, run
from segmerge.workspace import secrets
from segmerge.workspace.config import load

AS_OF = "2026-12-01"
RUN = f"lettre@{AS_OF}"
PASSWORD = "s3cret-Pa55word"


def sm(root: Path, *args: str, password: str | None = None) -> Ran:
    return segmerge(*args, "-w", str(root), env={"SEGMERGE_RELAY_TOKEN": password})


def ledger_rows(root: Path) -> list[dict]:
    path = root / ".segmerge" / "ledger.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM actions WHERE kind='send'")]


def connector(
    tmp_path: Path, server: SmtpServer | None, password: str | None = None, **settings
) -> SmtpConnector:
    base = {
        "host": "127.0.0.1",
        "port": server.port if server else free_port(),
        "starttls": False,
    } | settings
    ctx = ConnectorContext(
        name="relay",
        settings=base,
        root=tmp_path,
        config_file=tmp_path / "segmerge.toml",
        secret=lambda: password,
    )
    return SmtpConnector(ctx)


def action(i: int, to: str | None = None) -> Action:
    to = to or f"user{i}@example.org"
    msg = Message()
    msg["From"] = "Shop <shop@example.org>"
    msg["To"] = to
    msg["Subject"] = f"hello {i}"
    msg["Message-ID"] = f"<m{i}@example.org>"
    msg.set_payload(f"line one\n.a line with a leading dot\nmessage {i}\n")
    key = f"run|c{i}|send"
    return Action(key, "send", f"c{i}", {"to": to, "run_id": "run", "segment": "s"}, msg)


@pytest.fixture
def server():
    with SmtpServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch):
    monkeypatch.setattr(secrets.keyring, "get_password", lambda *a: None)


# settings --------------------------------------------------------------------------


def test_ssl_and_starttls_together_is_a_clear_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        connector(tmp_path, None, ssl=True, starttls=True)
    assert err.value.field == "relay.ssl" and "cannot both" in str(err.value)
    with pytest.raises(ConfigError) as err:
        connector(tmp_path, None, hots="typo")
    assert "relay.hots" in str(err.value)


def test_port_and_tls_defaults(tmp_path):
    c = SmtpConnector(ConnectorContext("relay", {"host": "mx.example"}, tmp_path, tmp_path / "t"))
    assert (c.port, c.starttls, c.batch_size, c.idempotent) == (587, True, 1, False)
    c = SmtpConnector(
        ConnectorContext("relay", {"host": "mx.example", "ssl": True}, tmp_path, tmp_path / "t")
    )
    assert (c.port, c.starttls) == (465, False)
    assert SmtpConnector.accepts == {"send"}


# the connector alone -----------------------------------------------------------


def test_messages_arrive_once_over_one_reused_connection(tmp_path, server):
    c = connector(tmp_path, server)
    outcomes = [o for i in range(30) for o in c.push([action(i)])]  # 30 push() calls
    outcomes += c.push([action(i) for i in range(30, 60)])  # and one batch
    c.close()
    assert [o.status for o in outcomes] == ["done"] * 60
    assert all("queued as Q" in o.detail for o in outcomes)
    assert server.sessions == 1 and c.connections == 1
    got = server.messages
    assert sorted(m.message_id for m in got) == sorted(f"<m{i}@example.org>" for i in range(60))
    assert all(m.mail_from == "shop@example.org" for m in got)
    # dot-stuffing undone by the server: the body is what was written
    assert b"\r\n.a line with a leading dot\r\n" in got[0].data


def test_max_per_connection_reconnects(tmp_path, server):
    c = connector(tmp_path, server, max_per_connection=10, envelope_from="bounces@example.org")
    assert all(o.status == "done" for o in c.push([action(i) for i in range(25)]))
    c.close()
    assert server.sessions == 3
    assert {m.mail_from for m in server.messages} == {"bounces@example.org"}


def test_connection_dropped_by_the_server_is_reopened_transparently(tmp_path):
    with SmtpServer(idle_timeout=0.3) as srv:
        c = connector(tmp_path, srv)
        assert c.push([action(1)])[0].status == "done"
        time.sleep(0.8)  # the server hangs up on the idle connection
        assert c.push([action(2)])[0].status == "done"
        c.close()
        assert srv.count() == 2 and srv.sessions == 2


def test_a_4xx_that_clears_within_the_push_is_sent_once(tmp_path, server):
    server.behaviour.flaky["user1@example.org"] = 2
    c = connector(tmp_path, server, retry_delay=0.01)
    outcomes = c.push([action(0), action(1), action(2)])
    assert [o.status for o in outcomes] == ["done"] * 3
    assert server.rcpts.count("user1@example.org") == 3
    assert server.by_message_id()["<m1@example.org>"] == 1


def test_a_lasting_4xx_is_retried_twice_then_left_for_the_next_run(tmp_path, server):
    server.behaviour.rcpt_replies["user1@example.org"] = "450 4.2.1 mailbox busy"
    c = connector(tmp_path, server, retry_delay=0.01)
    outcomes = {o.key: o for o in c.push([action(0), action(1)])}
    assert outcomes["run|c0|send"].status == "done"
    assert outcomes["run|c1|send"].status == "retry"
    assert "450 4.2.1 mailbox busy" in outcomes["run|c1|send"].detail
    assert server.rcpts.count("user1@example.org") == 3  # first try + two retries
    assert "<m1@example.org>" not in server.by_message_id()


def test_a_5xx_fails_that_message_only_with_the_servers_reason(tmp_path, server):
    server.behaviour.rcpt_replies["user1@example.org"] = "550 5.1.1 no such user"
    c = connector(tmp_path, server)
    outcomes = c.push([action(0), action(1), action(2)])
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert outcomes[1].detail == "550 5.1.1 no such user (RCPT TO)"
    assert server.rcpts.count("user1@example.org") == 1  # a 5xx is not retried
    assert server.count() == 2 and server.sessions == 1


def test_no_answer_after_the_body_left_is_uncertain_not_retried(tmp_path, server):
    server.behaviour.data_delay = 1.0
    c = connector(tmp_path, server, timeout=0.3)
    [outcome] = c.push([action(1)])
    assert outcome.status == "uncertain" and "may have been delivered" in outcome.detail
    server.behaviour.data_delay = 0
    assert c.push([action(2)])[0].status == "done"  # the next message reconnects
    time.sleep(0.9)
    assert server.by_message_id() == {"<m1@example.org>": 1, "<m2@example.org>": 1}


def test_server_gone_mid_batch_keeps_what_was_sent_and_stops(tmp_path, server, monkeypatch):
    server.behaviour.hangup_after = {"user1@example.org"}
    c = connector(tmp_path, server)
    real_open = c._open

    def open_once():
        if c.connections:
            raise ConnectorError(f"cannot reach the SMTP server {c.address}: Connection refused")
        return real_open()

    monkeypatch.setattr(c, "_open", open_once)
    outcomes = c.push([action(0), action(1), action(2)])
    assert [o.status for o in outcomes] == ["done", "uncertain", "retry"]
    assert "may have been delivered" in outcomes[1].detail
    assert "cannot reach" in outcomes[2].detail
    assert server.by_message_id() == {"<m0@example.org>": 1, "<m1@example.org>": 1}
    with pytest.raises(ConnectorError, match="cannot reach"):  # the next batch: nothing is tried
        c.push([action(3)])
    assert server.count() == 2


def test_server_gone_before_a_batch_raises_without_sending(tmp_path):
    srv = SmtpServer().start()
    c = connector(tmp_path, srv)
    assert c.push([action(0)])[0].status == "done"
    srv.stop()
    with pytest.raises(ConnectorError, match=f"127.0.0.1:{srv.port}"):
        c.push([action(1), action(2)])  # nothing of this batch left: the pipeline retries it


# check(): connection, TLS, login -------------------------------------------------


def test_check_unreachable_names_host_and_port(tmp_path):
    port = free_port()
    c = connector(tmp_path, None, port=port, timeout=2)
    with pytest.raises(ConnectorError) as err:
        c.check()
    assert f"cannot reach the SMTP server 127.0.0.1:{port}" in str(err.value)
    assert err.value.exit_code == 1


def test_check_logs_in_without_sending(tmp_path):
    with SmtpServer(login=("mailer", PASSWORD)) as srv:
        notes = connector(tmp_path, srv, PASSWORD, username="mailer").check()
        assert "logged in as mailer" in notes[0]
        assert srv.count() == 0 and srv.auth_attempts == ["mailer"]


def test_check_rejected_login_is_a_credential_error_without_the_password(tmp_path):
    with SmtpServer(login=("mailer", PASSWORD)) as srv:
        c = connector(tmp_path, srv, "wrong-" + PASSWORD, username="mailer")
        with pytest.raises(CredentialError) as err:
            c.check()
    text = str(err.value)
    assert "refused the login of mailer" in text and "535" in text
    assert "segmerge auth set relay" in text and PASSWORD not in text
    assert err.value.exit_code == 2


def test_username_without_password_says_how_to_store_it(tmp_path, server):
    with pytest.raises(CredentialError, match="segmerge auth set relay"):
        connector(tmp_path, server, None, username="mailer").check()


def test_starttls_required_but_not_offered(tmp_path, server):
    with pytest.raises(ConnectorError, match="does not offer STARTTLS"):
        connector(tmp_path, server, starttls=True).check()


tls = pytest.mark.skipif(not tls_available(), reason="neither cryptography nor openssl")


@tls
def test_starttls_with_a_trusted_certificate_and_login(tmp_path):
    with SmtpServer(tls="starttls", cert_dir=tmp_path / "tls", login=("mailer", PASSWORD)) as srv:
        c = connector(
            tmp_path, srv, PASSWORD, starttls=True, username="mailer", ca_file=str(srv.cert_file)
        )
        assert "STARTTLS" in c.check()[0]
        assert c.push([action(1)])[0].status == "done"
        c.close()
        assert srv.count() == 1


@tls
def test_untrusted_certificate_is_a_tls_error(tmp_path):
    with (
        SmtpServer(tls="starttls", cert_dir=tmp_path / "tls") as srv,
        pytest.raises(ConnectorError, match="TLS with the SMTP server .* failed"),
    ):
        connector(tmp_path, srv, starttls=True).check()


@tls
def test_implicit_tls(tmp_path):
    with SmtpServer(tls="implicit", cert_dir=tmp_path / "tls") as srv:
        c = connector(tmp_path, srv, ssl=True, starttls=None, ca_file=str(srv.cert_file))
        assert c.push([action(1)])[0].status == "done"
        c.close()
        assert srv.count() == 1


# the throttle ---------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_throttle_spaces_per_second_and_honours_the_hourly_window():
    clock = FakeClock()
    t = Throttle(per_second=10, per_hour=25, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(60):
        t.wait()
        times.append(clock.now)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.1 - 1e-9  # never two within 1/rate
    for i in range(len(times) - 25):  # never more than 25 in any hour
        assert times[i + 25] - times[i] >= 3600 - 1e-6
    assert times[25] - times[0] == pytest.approx(3600)  # waits, exactly as long as needed


def test_throttle_off_never_sleeps():
    clock = FakeClock()
    t = Throttle(clock=clock, sleep=clock.sleep)
    for _ in range(100):
        t.wait()
    assert clock.now == 1000.0


def windows_max(times: list[float], width: float = 1.0) -> int:
    """The most events in any half-open window [t, t + width)."""
    times, best, j = sorted(times), 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


# through the pipeline ---------------------------------------------------------


def test_campaign_arrives_once_with_its_headers(tmp_path, server):
    root = make_workspace(tmp_path / "ws", 40, server, unsubscribed_every=7)
    first = sm(root, "run", "lettre", "--as-of", AS_OF)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = ledger_rows(root)
    mailable = [i for i in range(40) if i % 7]
    assert sorted(r["contact_id"] for r in rows) == [f"c{i:05d}" for i in mailable]
    assert {r["status"] for r in rows} == {"done"}
    assert all("queued as" in r["detail"] for r in rows)
    counts = server.by_message_id()
    expected = {message_id_for(r["key"], "boutique.example") for r in rows}
    assert set(counts) == expected and set(counts.values()) == {1}
    for m in server.messages:
        h = m.headers()
        assert m.rcpt_tos == [h["To"].split("<")[1].rstrip(">")]
        assert m.mail_from == "bonjour@boutique.example"
        assert h["List-Unsubscribe"].startswith("<https://boutique.example/desabonnement?token=")
        assert h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert {m.rcpt_tos[0] for m in server.messages} == {f"user{i}@example.org" for i in mailable}
    assert server.sessions <= 2  # the check's, then one for all the messages
    again = sm(root, "run", "lettre", "--as-of", AS_OF)
    assert again.returncode == 0 and server.count() == len(mailable)


def test_throttle_through_the_pipeline(tmp_path, server):
    root = make_workspace(tmp_path / "ws", 45, server, rate_per_second=30)
    summary = run(load(root), "lettre", RunOptions(as_of=AS_OF))
    assert summary.outcome["send"] == {"done": 45}
    times = [m.at for m in server.messages]
    assert windows_max(times) <= 31  # 30 a second; one more for the server's own jitter
    assert max(times) - min(times) >= 44 / 30 * 0.9  # it waited rather than dropped


def test_4xx_goes_back_to_planned_then_the_next_run_sends_it(tmp_path, server):
    root = make_workspace(tmp_path / "ws", 5, server, retry_delay=0.01)
    server.behaviour.rcpt_replies["user2@example.org"] = "451 4.3.0 temporary failure"
    run(load(root), "lettre", RunOptions(as_of=AS_OF))
    rows = {r["contact_id"]: r for r in ledger_rows(root)}
    assert rows["c00002"]["status"] == "planned"
    assert "451 4.3.0 temporary failure" in rows["c00002"]["detail"]
    assert server.rcpts.count("user2@example.org") == 3
    server.behaviour.rcpt_replies.clear()
    run(load(root), "lettre", RunOptions(as_of=AS_OF))
    assert {r["status"] for r in ledger_rows(root)} == {"done"}
    assert set(server.by_message_id().values()) == {1} and server.count() == 5


def test_5xx_is_failed_with_reason_in_history_csv(tmp_path, server):
    root = make_workspace(tmp_path / "ws", 6, server)
    server.behaviour.rcpt_replies["user3@example.org"] = (
        "550 5.1.1 <user3@example.org>: no such user"
    )
    res = sm(root, "run", "lettre", "--as-of", AS_OF)
    assert res.returncode == 1, res.stdout + res.stderr
    assert server.count() == 5
    hist = sm(root, "history", "--failed", "--csv")
    assert hist.returncode == 0, hist.stderr
    [row] = list(csv.DictReader(io.StringIO(hist.stdout)))
    assert row["contact_id"] == "c00003" and row["status"] == "failed"
    assert row["destination"] == "relay" and row["target"] == "user3@example.org"
    assert "550 5.1.1 <user3@example.org>: no such user" in row["detail"]


def test_rejected_login_exits_2_and_never_shows_the_password(tmp_path):
    with SmtpServer(login=("mailer", PASSWORD)) as srv:
        root = make_workspace(tmp_path / "ws", 3, srv, username="mailer")
        res = sm(root, "run", "lettre", "--as-of", AS_OF, password="not-" + PASSWORD)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "refused the login of mailer" in res.stderr
        assert "segmerge auth set relay" in res.stderr
        assert PASSWORD not in res.stdout + res.stderr and "Traceback" not in res.stderr
        assert srv.count() == 0 and not ledger_rows(root)
        ok = sm(root, "run", "lettre", "--as-of", AS_OF, password=PASSWORD)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert srv.count() == 3


def test_unreachable_server_is_a_clear_error_and_nothing_is_done(tmp_path):
    root = make_workspace(tmp_path / "ws", 3, None, timeout=3)
    res = sm(root, "run", "lettre", "--as-of", AS_OF)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "cannot reach the SMTP server 127.0.0.1:" in res.stderr
    assert "Traceback" not in res.stderr
    assert not [r for r in ledger_rows(root) if r["status"] == "done"]


def test_a_real_smtplib_client_sees_the_same_server(server):
    """The helper itself: a plain smtplib send is recorded with its Message-ID."""
    with smtplib.SMTP(server.host, server.port) as s:
        s.sendmail(
            "a@example.org", ["b@example.org"], b"Message-ID: <x@y>\r\nSubject: t\r\n\r\nbody\r\n"
        )
    assert server.by_message_id() == {"<x@y>": 1} and server.sessions == 1
