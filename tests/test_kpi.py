"""KPI statistics and attribution on small known data, checked by hand and against statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from segmerge import i18n
from segmerge.report.kpi import build
from segmerge.report.stats import (
    mde_means,
    mde_proportions,
    newcombe,
    sample_size,
    sample_size_means,
    welch,
    wilson,
)
from segmerge.workspace.kpi import KpiConfig

T0 = pd.Timestamp("2026-12-01 09:00", tz="UTC")
LATER = T0 + pd.Timedelta(days=30)  # every window below has closed


@pytest.fixture
def french():
    i18n.use_locale("fr_FR")
    yield
    i18n.use_locale("en")


def test_wilson_by_hand_and_against_statsmodels():
    # 10 / 100: centre (0.1 + z²/200) / (1 + z²/100), the textbook 5.52 % – 17.44 %
    lo, hi = wilson(10, 100)
    assert lo == pytest.approx(0.05523, abs=1e-5) and hi == pytest.approx(0.17437, abs=1e-5)
    for x, n in [(0, 10), (1, 3), (10, 10), (37, 912), (500, 1000)]:
        assert wilson(x, n) == pytest.approx(proportion_confint(x, n, method="wilson"), abs=1e-12)


@pytest.mark.parametrize(
    "x1,n1,x2,n2", [(30, 200, 20, 200), (0, 50, 3, 40), (5, 5, 0, 7), (412, 2000, 371, 2100)]
)
def test_newcombe_against_statsmodels(x1, n1, x2, n2):
    expected = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert newcombe(x1, n1, x2, n2) == pytest.approx(tuple(map(float, expected)), abs=1e-12)


def test_welch_against_statsmodels():
    rng = np.random.default_rng(7)
    for a, b in [
        (np.array([1.0, 2, 3, 4, 10]), np.array([0.0, 0, 1, 2])),
        (rng.exponential(20, 300), rng.exponential(25, 80)),
    ]:
        d, lo, hi = welch(a, b)
        cm = CompareMeans(DescrStatsW(a), DescrStatsW(b))
        assert d == pytest.approx(a.mean() - b.mean())
        assert (lo, hi) == pytest.approx(cm.tconfint_diff(usevar="unequal"), abs=1e-9)
    assert welch(np.array([1.0]), np.array([1.0, 2.0])) is None


def test_sample_size_and_mde_against_statsmodels():
    power = NormalIndPower()
    # 10 % vs 15 %, alpha 0.05 two-sided, power 0.8, on Cohen's arcsine scale: 680.4 -> 681
    h = 2 * np.arcsin(np.sqrt(0.15)) - 2 * np.arcsin(np.sqrt(0.10))
    assert sample_size(0.10, 0.15) == 681
    for alpha, ratio in [(0.05, 1.0), (0.0125, 0.25), (0.1, 3.0)]:
        n1 = power.solve_power(effect_size=h, nobs1=None, alpha=alpha, power=0.8, ratio=ratio)
        assert sample_size(0.10, 0.15, alpha, 0.8, ratio) == pytest.approx(n1, abs=1.0)
    assert sample_size(0.2, 0.2) is None
    # the MDE is the rise whose arcsine effect statsmodels solves for those sizes
    for p_ref, n1, n2, alpha in [(0.1, 1000, 800, 0.05), (0.02, 5000, 500, 0.0125)]:
        mde = mde_proportions(p_ref, n1, n2, alpha, 0.8)
        h = 2 * np.arcsin(np.sqrt(p_ref + mde)) - 2 * np.arcsin(np.sqrt(p_ref))
        solved = power.solve_power(
            effect_size=None, nobs1=n1, alpha=alpha, power=0.8, ratio=n2 / n1
        )
        assert h == pytest.approx(solved, rel=1e-4)
    # means: 2 (z_a + z_b)² sd² / delta² = 2 * 7.849 * 100 / 4 = 392.4 -> 393
    assert sample_size_means(2.0, 10.0) == 393
    n1 = power.solve_power(effect_size=0.2, nobs1=None, alpha=0.05, power=0.8, ratio=0.5)
    assert sample_size_means(2.0, 10.0, ratio=0.5) == pytest.approx(n1, abs=1.0)
    # the MDE of means with equal sds is the effect statsmodels solves, times the sd
    solved = power.solve_power(effect_size=None, nobs1=400, alpha=0.05, power=0.8, ratio=1.0)
    assert mde_means(10.0, 10.0, 400, 400) == pytest.approx(10 * solved, rel=1e-4)


def people(groups: list[tuple[str, str | None, str, int]]) -> pd.DataFrame:
    rows = []
    for seg, variant, status, n in groups:
        for _ in range(n):
            rows.append(
                {
                    "contact_id": f"c{len(rows):04d}",
                    "segment": seg,
                    "variant": variant,
                    "status": status,
                    "sent_at": T0,
                }
            )
    out = pd.DataFrame(rows)
    out["contact_id"] = out["contact_id"].astype("string")
    return out


def tables(ev: list[tuple[str, str, str, pd.Timestamp]], od: list[tuple[str, pd.Timestamp, float]]):
    events = pd.DataFrame(ev, columns=["contact_id", "campaign_id", "event", "at"])
    orders = pd.DataFrame(od, columns=["contact_id", "ordered_at", "amount"])
    events["at"] = pd.to_datetime(events["at"], utc=True)
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], utc=True)
    for t in (events, orders):
        t["contact_id"] = t["contact_id"].astype("string")
    return events, orders


def test_rates_are_hand_counts_within_the_window(french):
    p = people([("s", None, "done", 10), ("s", None, "holdout", 4)])
    h = pd.Timedelta(hours=1)
    ev = [
        ("c0000", "x", "open", T0 + h),
        ("c0000", "x", "open", T0 + 2 * h),  # one opener, twice
        ("c0001", "y", "open", T0 + pd.Timedelta(days=3)),
        ("c0001", "y", "click", T0 + 5 * h),
        ("c0002", "x", "open", T0 - h),  # before the send: not counted
        ("c0003", "x", "open", T0 + pd.Timedelta(days=15)),  # after the window
        ("c0004", "x", "unsubscribe", T0 + h),
        ("c0011", "x", "open", T0 + h),
    ]  # a held-out contact: opens undefined
    od = [
        ("c0000", T0 + pd.Timedelta(days=2), 40.0),
        ("c0000", T0 + pd.Timedelta(days=4), 10.0),
        ("c0005", T0 + pd.Timedelta(days=20), 99.0),  # too late
        ("c0010", T0 + pd.Timedelta(days=1), 30.0),
    ]
    events, orders = tables(ev, od)
    cfg = KpiConfig(kpi_mde=10.0)
    r = build("camp", "camp@2026-12-01", p, events, orders, 14, {"camp"}, settings=cfg, now=LATER)
    g = {x.name: x for x in r.groups}
    sent, held = g["s"], g["s (témoin)"]
    assert (sent.n, held.n) == (10, 4)
    assert (sent.rates["open"].count, sent.rates["click"].count) == (2, 1)
    assert sent.rates["unsubscribe"].count == 1
    assert sent.rates["conversion"].count == 1 and sent.revenue_per_recipient == pytest.approx(5.0)
    assert held.rates["open"] is None and held.rates["click"] is None
    assert held.rates["conversion"].count == 1 and held.revenue_per_recipient == 7.5
    assert sent.rates["open"].ci == pytest.approx(wilson(2, 10))
    # no event carries this campaign's id: events of any campaign are counted, and said so
    assert any("toutes campagnes" in n for n in r.notes)
    conv = [c for c in r.comparisons if c.first == "s" and c.measure == "conversion"][0]
    assert conv.second == "s (témoin)" and conv.ci == pytest.approx(newcombe(1, 10, 1, 4))
    # 10 % vs 25 %: no difference shown. "N more" aims at the declared 10 points over the
    # control's 25 %, keeping the 10:4 split, at alpha / 4 (4 tests: conversion and revenue,
    # of the segment and of everyone, against their control groups)
    assert "pas de différence démontrée" in conv.verdict and "jeu égal" not in conv.verdict
    h = 2 * np.arcsin(np.sqrt(0.35)) - 2 * np.arcsin(np.sqrt(0.25))
    n1 = NormalIndPower().solve_power(
        effect_size=h, nobs1=None, alpha=0.05 / 4, power=0.8, ratio=0.4
    )
    more = int(np.ceil(n1)) + int(np.ceil(np.ceil(n1) * 0.4)) - 14
    assert conv.more_needed == more
    assert f"il faut {i18n.number(more)} destinataires de plus" in conv.verdict
    assert "4 comparaisons (8 tests)" not in " ".join(r.notes)
    assert any(n.startswith("Budget d'erreur\u202f: 4 comparaisons (4 tests)") for n in r.notes)


def test_events_matched_by_campaign_id_when_some_carry_it(french):
    p = people([("s", None, "done", 3)])
    h = pd.Timedelta(hours=1)
    events, orders = tables(
        [("c0000", "camp", "open", T0 + h), ("c0001", "other", "open", T0 + h)],
        [("c0000", T0 + h, 1.0)],
    )
    r = build("camp", "camp@2026-12-01", p, events, orders, 14, {"camp", "camp@2026-12-01"})
    assert r.groups[0].rates["open"].count == 1
    assert any("campaign_id" in n for n in r.notes)


def test_b_beats_a_and_no_difference_verdicts(french):
    big = people([("s", "A", "done", 1000), ("s", "B", "done", 1000)])
    ids_a = big.index[big["variant"] == "A"][:100]
    ids_b = big.index[big["variant"] == "B"][:150]
    at = T0 + pd.Timedelta(hours=2)
    ev = [(big.at[i, "contact_id"], "x", "click", at) for i in [*ids_a, *ids_b]]
    late = ("zz", T0 + pd.Timedelta(days=20), 1.0)  # the source's data cover the window
    events, orders = tables(ev, [("c0000", at, 1.0), late])
    r = build("camp", "camp@d", big, events, orders, 14, set(), now=LATER)
    clicks = [c for c in r.comparisons if c.measure == "click"][0]
    lo, hi = newcombe(150, 1000, 100, 1000)
    assert clicks.first == "s B" and clicks.second == "s A" and lo > 0
    assert clicks.outcome == "beats" and clicks.p_adjusted <= 0.05
    n = "\u202f"
    assert clicks.verdict.startswith(
        f"s B bat s A sur le taux de clic{n}: +5 points (IC 95{n}% "
        f"+{i18n.number(100 * lo, 1)} points à +{i18n.number(100 * hi, 1)} points{n}; p = "
    )
    # the same rates on 200 per variant: no difference shown, with what could have been seen
    small = people([("s", "A", "done", 200), ("s", "B", "done", 200)])
    ia, ib = small.index[small["variant"] == "A"][:20], small.index[small["variant"] == "B"][:30]
    ev = [(small.at[i, "contact_id"], "x", "click", at) for i in [*ia, *ib]]
    events, orders = tables(ev, [("c0000", at, 1.0), late])
    r = build(
        "camp",
        "camp@d",
        small,
        events,
        orders,
        14,
        set(),
        now=LATER,
        settings=KpiConfig(kpi_mde=5.0),
    )
    clicks = [c for c in r.comparisons if c.measure == "click"][0]
    assert clicks.outcome == "no_difference"
    assert "pas de différence démontrée" in clicks.verdict and "jeu égal" not in clicks.verdict
    mde = mde_proportions(0.10, 200, 200, 0.05 / 4, 0.8)
    assert f"d'au moins {i18n.number(round(100 * mde, 1), 1)} points" in clicks.verdict
    assert "destinataires de plus pour détecter l'effet minimal déclaré (5 points)" in (
        clicks.verdict
    )


def test_no_events_yet_and_empty_groups_say_not_enough_data(french):
    p = people([("s", None, "done", 5)])
    events, orders = tables([], [("zz", T0 - pd.Timedelta(days=1), 5.0)])
    r = build("camp", "camp@d", p, events, orders, 14, set())
    g = r.groups[0]
    assert all(g.rates[e] is None for e in ("open", "click", "unsubscribe", "conversion"))
    assert g.revenue_per_recipient is None
    assert any("aucune ouverture" in n for n in r.notes)
    assert any("s'arrêtent avant l'envoi" in n for n in r.notes)
    # a run that sent nothing: an explicit message, no group, no NaN
    none = build("camp", "camp@d", people([("s", None, "holdout", 3)]), events, orders, 14, set())
    assert none.groups == [] and "aucun message envoyé" in none.notes[0]


def test_table_intervals_follow_kpi_alpha_and_say_their_level(french):
    p = people([("s", None, "done", 200), ("s", None, "holdout", 50)])
    at = T0 + pd.Timedelta(hours=2)
    ev = [(f"c{i:04d}", "camp", "click", at) for i in range(37)]
    events, orders = tables(ev, [("c0000", at, 10.0), ("zz", T0 + pd.Timedelta(days=20), 1.0)])
    for alpha in (0.10, 0.05, 0.01):
        cfg = KpiConfig(kpi_alpha=alpha)
        r = build("camp", "camp@d", p, events, orders, 14, {"camp"}, settings=cfg, now=LATER)
        clicks = r.groups[0].rates["click"]
        expected = proportion_confint(37, 200, alpha=alpha, method="wilson")
        assert clicks.ci == pytest.approx(expected, abs=1e-12)
        level = {0.10: "90", 0.05: "95", 0.01: "99"}[alpha]
        assert r.interval_heading() == f"taux (IC {level}\u202f%)"
    # the 90 % interval is narrower than the 95 % one the table showed before
    assert proportion_confint(37, 200, alpha=0.1, method="wilson")[0] > wilson(37, 200)[0]


def test_a_platform_campaign_is_measured_from_its_member_rows(tmp_path, french):
    """Brevo/Mailchimp/HubSpot campaigns with an experiment leave `member` rows (variant or
    holdout), no `send` rows: kpi forms A, B and the control group from them, each window
    starting at the run's time."""
    from segmerge.ledger.store import Ledger, PlannedAction
    from segmerge.report.kpi import latest_run, platform_note, run_people

    ledger = Ledger(tmp_path / "ledger.sqlite")
    run = "promo@2026-12-01"
    ledger.begin_run(run, "promo", "2026-12-01")
    ledger.db.execute("UPDATE runs SET started_at=? WHERE run_id=?", (T0.isoformat(), run))
    rows = []
    for i in range(300):
        status, variant = ("holdout", None) if i % 10 == 0 else ("done", "AB"[i % 2])
        rows.append(
            PlannedAction(
                f"{run}|c{i:04d}|member",
                f"c{i:04d}",
                "member",
                "brevo",
                "s",
                f"c{i}@x.fr",
                status,
                "",
                variant=variant,
            )
        )
    ledger.plan(run, rows)
    assert latest_run(ledger, "promo") == run
    p = run_people(ledger, run)
    ledger.close()
    assert (p["sent_at"] == T0).all() and set(p["kind"]) == {"member"}
    at = T0 + pd.Timedelta(days=2)
    od = [(f"c{i:04d}", at, 20.0) for i in range(0, 300, 3)]  # orders: the platform's letters
    events, orders = tables([("c0001", "brevo-42", "click", at)], od)
    orders.loc[len(orders)] = ["zz", T0 + pd.Timedelta(days=20), 1.0]
    r = build("promo", run, p, events, orders, 14, {"promo", "brevo-42"}, now=LATER)
    g = {x.name: x for x in r.groups}
    assert (g["s A"].n, g["s B"].n, g["s (témoin)"].n) == (
        120,
        150,
        30,
    )  # every tenth held out, all of them even: A
    held = [i for i in range(0, 300, 10)]
    assert g["s (témoin)"].rates["conversion"].count == sum(1 for i in held if i % 3 == 0)
    assert g["s B"].rates["click"].count == 1
    assert any(c.first == "s B" and c.second == "s A" for c in r.comparisons)
    assert any(c.second == "s (témoin)" and c.measure == "conversion" for c in r.comparisons)
    note = platform_note(p)
    assert note is not None and "l'heure de l'exécution (1er décembre 2026 09:00 UTC)" in note
