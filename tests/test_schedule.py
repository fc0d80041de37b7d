"""Schedules: cron parsing with crontab's rules, DST in Europe/Paris, add/list/remove."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from apscheduler.triggers.cron import CronTrigger
from cli import segmerge
from typer.testing import CliRunner

from segmerge.cli.schedule import register
from segmerge.errors import ConfigError
from segmerge.serve.cron import (
    CronSchedule,
    ScheduleStore,
    load_schedules,
    missed_fire,
    next_fires,
    parse_cron,
    previous_fire,
)
from segmerge.workspace import config as wsmod

PARIS = ZoneInfo("Europe/Paris")


def fires(expr: str, start: datetime, n: int) -> list[datetime]:
    return next_fires(parse_cron(expr, PARIS), n, start)


def local(ts: list[datetime]) -> list[str]:
    return [t.astimezone(PARIS).isoformat() for t in ts]


@pytest.fixture()
def ws(tmp_path: Path) -> wsmod.Workspace:
    target = tmp_path / "shop"
    with as_file(files("segmerge") / "scaffold") as src:
        shutil.copytree(src, target)
    return wsmod.load(target)


def cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    register(app)
    return app


# parsing ---------------------------------------------------------------------


def test_monday_nine_in_the_workspace_time_zone() -> None:
    got = fires("0 9 * * MON", datetime(2026, 12, 2, tzinfo=UTC), 3)
    assert local(got) == [
        "2026-12-07T09:00:00+01:00",
        "2026-12-14T09:00:00+01:00",
        "2026-12-21T09:00:00+01:00",
    ]


def test_weekday_numbers_are_crontabs_not_apschedulers() -> None:
    start = datetime(2026, 12, 2, tzinfo=UTC)  # a Wednesday
    assert fires("0 9 * * 1", start, 1) == fires("0 9 * * mon", start, 1)
    assert local(fires("0 9 * * 0", start, 1)) == ["2026-12-06T09:00:00+01:00"]  # Sunday
    assert fires("0 9 * * 7", start, 2) == fires("0 9 * * 0", start, 2)
    weekdays = [t.astimezone(PARIS).strftime("%a") for t in fires("0 9 * * 1-5", start, 5)]
    assert weekdays == ["Wed", "Thu", "Fri", "Mon", "Tue"]
    # APScheduler 3.x alone reads 1 as Tuesday: the translation is what makes this pass
    raw = CronTrigger.from_crontab("0 9 * * 1", timezone=PARIS).get_next_fire_time(None, start)
    assert raw.strftime("%a") == "Tue"


def test_day_of_month_or_weekday_as_in_crontab() -> None:
    got = fires("0 9 13 * FRI", datetime(2026, 11, 1, tzinfo=UTC), 4)
    assert [t.astimezone(PARIS).strftime("%a %d") for t in got] == [
        "Fri 06",
        "Fri 13",
        "Fri 20",
        "Fri 27",
    ]
    got = fires("0 9 1 * MON", datetime(2026, 12, 1, 12, tzinfo=UTC), 2)
    assert [t.astimezone(PARIS).strftime("%a %d") for t in got] == ["Mon 07", "Mon 14"]


def test_six_fields_mean_seconds_first() -> None:
    got = fires("*/20 * * * * *", datetime(2026, 12, 2, 10, 0, 5, tzinfo=UTC), 3)
    assert [t.second for t in got] == [20, 40, 0]


@pytest.mark.parametrize(
    "expr, words",
    [
        ("0 25 * * *", "'0 25 * * *'"),
        ("0 9 * *", "expected 5 fields"),
        ("0 9 * * FOO", "unknown weekday 'foo'"),
        ("0 9 * * 8", "out of range"),
        ("0 9 * * 5-1", "backwards"),
        ("every monday", "'every monday'"),
    ],
)
def test_bad_cron_is_a_config_error_naming_it(expr: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cron(expr, PARIS, file="segmerge.toml", line=7, field="campaigns.x.schedule")
    text = str(info.value)
    assert words in text and f"{expr!r}" in text
    assert text.startswith("segmerge.toml:7: campaigns.x.schedule:")
    assert info.value.exit_code == 2


# daylight saving time --------------------------------------------------------


def test_spring_forward_a_missing_time_fires_once() -> None:
    # 2027-03-28 is the last Sunday of March: Paris jumps from 02:00 to 03:00
    got = fires("0 2 * * *", datetime(2027, 3, 26, 12, tzinfo=UTC), 3)
    assert [t.isoformat() for t in got] == [
        "2027-03-27T01:00:00+00:00",  # 02:00 CET
        "2027-03-28T01:00:00+00:00",  # 02:00 does not exist: once, at 03:00 CEST
        "2027-03-29T00:00:00+00:00",  # 02:00 CEST
    ]
    assert local(got)[1] == "2027-03-28T03:00:00+02:00"
    got = fires("30 2 * * *", datetime(2027, 3, 27, 12, tzinfo=UTC), 2)
    assert local(got) == ["2027-03-28T03:30:00+02:00", "2027-03-29T02:30:00+02:00"]


def test_fall_back_a_doubled_time_fires_once() -> None:
    # 2027-10-31: Paris goes from 03:00 CEST back to 02:00 CET, 02:30 happens twice
    got = fires("30 2 * * *", datetime(2027, 10, 30, 12, tzinfo=UTC), 3)
    assert local(got) == [
        "2027-10-31T02:30:00+02:00",
        "2027-11-01T02:30:00+01:00",
        "2027-11-02T02:30:00+01:00",
    ]
    # what APScheduler 3.x does alone: twice the same night, which is what we avoid
    raw = CronTrigger.from_crontab("30 2 * * *", timezone=PARIS)
    first, second = next_fires(raw, 2, datetime(2027, 10, 30, 12, tzinfo=UTC))
    assert second - first == timedelta(hours=1)


def test_monday_nine_keeps_its_wall_time_across_the_change() -> None:
    got = fires("0 9 * * MON", datetime(2027, 3, 20, tzinfo=UTC), 2)
    assert local(got) == ["2027-03-22T09:00:00+01:00", "2027-03-29T09:00:00+02:00"]


def test_previous_and_missed_fire() -> None:
    trig = CronSchedule("0 9 * * MON", PARIS)
    now = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)  # Monday 09:30 Paris
    prev = previous_fire(trig, now)
    assert prev == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    earlier = datetime(2026, 12, 1, tzinfo=UTC)
    assert missed_fire(trig, earlier, now, 3600) == prev  # down at 09:00: run it now
    assert missed_fire(trig, earlier, now, 600) is None  # too late for a 10-minute grace
    assert missed_fire(trig, prev, now, 3600) is None  # that fire was handled
    assert missed_fire(trig, None, now, 3600) is None  # never served: nothing owed
    assert previous_fire(CronSchedule("* * * * * *", PARIS), now) == now


# the store and the commands ----------------------------------------------------


def test_toml_and_added_schedules(ws: wsmod.Workspace) -> None:
    store = ScheduleStore(ws)
    assert store.add("rfm", "0 8 1 * *")
    assert not store.add("rfm", "0 8 1 * *")
    store.close()
    got = [(s.campaign, s.cron, s.origin) for s in load_schedules(ws)]
    assert got == [("profils", "0 9 * * MON", "toml"), ("rfm", "0 8 1 * *", "added")]


def test_bad_cron_in_toml_names_file_line_and_field(ws: wsmod.Workspace) -> None:
    text = ws.config_file.read_text(encoding="utf-8")
    ws.config_file.write_text(text.replace('"0 9 * * MON"', '"0 9 * * LUNDI"'), "utf-8")
    with pytest.raises(ConfigError) as info:
        load_schedules(wsmod.load(ws.root))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("schedule ="))
    assert str(info.value).startswith(f"{ws.config_file}:{line}: campaigns.profils.schedule:")
    assert "'0 9 * * LUNDI'" in str(info.value)


def test_unknown_time_zone_is_refused(ws: wsmod.Workspace) -> None:
    text = ws.config_file.read_text(encoding="utf-8")
    ws.config_file.write_text(text.replace("Europe/Paris", "Europe/Atlantis"), "utf-8")
    with pytest.raises(ConfigError) as info:
        wsmod.load(ws.root)
    assert "unknown time zone 'Europe/Atlantis'" in str(info.value)
    assert str(info.value).startswith(f"{ws.config_file}:2: timezone:")


def test_add_list_remove_round_trip(ws: wsmod.Workspace) -> None:
    runner = CliRunner()
    app = cli_app()
    w = ["-w", str(ws.root)]
    r = runner.invoke(app, ["schedule", "add", "rfm", "0  8 * *  1-5", *w])
    assert r.exit_code == 0, r.output
    assert "Added: rfm 0 8 * * 1-5 (Europe/Paris)" in r.output
    r = runner.invoke(app, ["schedule", "list", *w], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    rows = [ln for ln in r.output.splitlines() if "profils" in ln or "rfm" in ln]
    assert "0 9 * * MON" in rows[0] and "toml" in rows[0] and "Europe/Paris" in rows[0]
    assert "0 8 * * 1-5" in rows[1] and "added" in rows[1]
    now = datetime.now(UTC)
    for t in fires("0 8 * * 1-5", now, 3) + fires("0 9 * * MON", now, 3):
        assert t.astimezone(PARIS).strftime("%Y-%m-%d %H:%M %Z") in r.output
    r = runner.invoke(app, ["schedule", "remove", "rfm", *w])
    assert r.exit_code == 0 and "Removed 1 schedule of rfm" in r.output
    r = runner.invoke(app, ["schedule", "list", *w], env={"COLUMNS": "200"})
    assert "rfm" not in r.output and "profils" in r.output


def test_removing_a_toml_schedule_says_where_it_is(ws: wsmod.Workspace) -> None:
    r = CliRunner().invoke(cli_app(), ["schedule", "remove", "profils", "-w", str(ws.root)])
    assert isinstance(r.exception, ConfigError)
    assert "comes from segmerge.toml" in str(r.exception)


def test_cli_bad_cron_and_unknown_campaign_exit_2(ws: wsmod.Workspace) -> None:
    w = ["-w", str(ws.root)]
    for args, words in [
        (["schedule", "add", "profils", "0 9 * * FOO"], "bad cron expression '0 9 * * FOO'"),
        (["schedule", "add", "nope", "0 9 * * MON"], "no campaign 'nope'"),
    ]:
        p = segmerge(*args, *w)
        assert p.returncode == 2, p.stderr
        assert words in p.stderr and "Traceback" not in p.stderr
    assert load_schedules(ws)[1:] == []  # nothing was added
