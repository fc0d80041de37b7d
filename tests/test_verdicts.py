"""The verdicts of `kpi`: tests checked against statsmodels/scipy, the decision simulated on
campaigns with a known truth, and the sentences a marketer reads (French and English)."""

from __future__ import annotations

import gc
import time

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy.stats import ttest_ind
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.weightstats import ttost_ind

from segmerge import i18n
from segmerge.report import stats
from segmerge.report.kpi import add_baseline, build
from segmerge.report.verdicts import decide
from segmerge.workspace.kpi import KpiConfig

T0 = pd.Timestamp("2026-12-01 09:00", tz="UTC")
NNBSP = "\u202f"


@pytest.fixture
def french():
    i18n.use_locale("fr_FR")
    yield
    i18n.use_locale("en")


# --- the tests behind the verdicts, against statsmodels and scipy ------------------------------

CASES = [(30, 200, 20, 200), (0, 50, 3, 40), (412, 2000, 371, 2100), (7, 90, 19, 110)]


@pytest.mark.parametrize("x1,n1,x2,n2", CASES)
def test_difference_p_is_where_newcombes_interval_reaches_zero(x1, n1, x2, n2):
    p = stats.diff_pvalue(x1, n1, x2, n2)
    lo, hi = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff", alpha=p)
    assert min(abs(lo), abs(hi)) == pytest.approx(0.0, abs=1e-9)
    # so the verdict and the printed 95 % interval never disagree
    lo95, hi95 = stats.newcombe(x1, n1, x2, n2)
    assert (p < 0.05) == (lo95 > 0 or hi95 < 0)


@pytest.mark.parametrize("x1,n1,x2,n2", CASES)
def test_equivalence_p_is_two_one_sided_tests_on_newcombe(x1, n1, x2, n2):
    margin = 0.1
    p = stats.tost_pvalue(x1, n1, x2, n2, margin)
    lo, hi = confint_proportions_2indep(
        x1, n1, x2, n2, method="newcomb", compare="diff", alpha=2 * p
    )
    # at level p, the (1 - 2p) interval touches one margin and stays inside the other
    assert min(abs(lo + margin), abs(hi - margin)) == pytest.approx(0.0, abs=1e-9)
    assert -margin - 1e-9 <= lo and hi <= margin + 1e-9
    lo90, hi90 = stats.newcombe(x1, n1, x2, n2, alpha=0.10)
    assert (p < 0.05) == (-margin < lo90 and hi90 < margin)


def test_welch_tests_against_scipy_and_statsmodels():
    rng = np.random.default_rng(3)
    for a, b in [
        (rng.exponential(20, 300), rng.exponential(25, 80)),
        (np.array([0.0, 0, 0, 40, 0, 55]), np.array([0.0, 30, 0, 0, 0])),
    ]:
        assert stats.welch_pvalue(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue)
        for margin in (2.0, 8.0):
            expected = ttost_ind(a, b, -margin, margin, usevar="unequal")[0]
            assert stats.welch_tost_pvalue(a, b, margin) == pytest.approx(expected)


def test_holm_and_benjamini_hochberg_against_statsmodels(monkeypatch):
    p = np.random.default_rng(5).uniform(0, 0.1, size=(5, 9))
    with monkeypatch.context() as m:
        # statsmodels' Holm runs a full gc.collect() per call, as slow as the suite's heap is big
        m.setattr(gc, "collect", lambda generation=2: 0)
        holm = np.array([multipletests(row, method="holm")[1] for row in p])
    bh = np.array([multipletests(row, method="fdr_bh")[1] for row in p])
    assert stats.adjust(p, "holm") == pytest.approx(holm, abs=1e-12)
    assert stats.adjust(p, "benjamini-hochberg") == pytest.approx(bh, abs=1e-12)


# --- the decision on simulated campaigns with a known truth -----------------------------------

N = 3000  # recipients per variant
SIMS = 1000
BASE = np.array([0.20, 0.05, 0.03])  # open, click, conversion rates of B


def simulate(rng: np.random.Generator, lift: np.ndarray, margin: float | None):
    """1,000 reports of A vs B on three rates; codes 0 none, 1 "beats", 2 "equivalent"."""
    xa = rng.binomial(N, BASE + lift, size=(SIMS, 3))
    xb = rng.binomial(N, BASE, size=(SIMS, 3))
    p = stats.diff_pvalue(xa, N, xb, N)
    eq = stats.tost_pvalue(xa, N, xb, N, margin) if margin is not None else np.full(p.shape, np.nan)
    codes, _adj, _eq = decide(p, eq, 0.05, "holm")
    return codes, np.sign(xa - xb)


def test_false_beats_stay_under_the_declared_level_on_1000_campaigns():
    started = time.process_time()
    rng = np.random.default_rng(2026)
    # A = B on all three rates: every "beats" is false. Per verdict, their rate stays under
    # alpha; per report (any false winner among three: what Holm bounds), under alpha too,
    # give or take the simulation's own error (3 sd of a rate of 0.05 over 1,000 reports:
    # Holm's exact level makes a strict 0.05 a coin toss of the seed)
    codes, _sign = simulate(rng, np.zeros(3), margin=None)
    assert (codes == 1).mean() <= 0.05
    assert (codes == 1).any(axis=1).mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / SIMS)
    # A > B by 2 points on clicks (5 % -> 7 %), equal elsewhere
    lift = np.array([0.0, 0.02, 0.0])
    codes, sign = simulate(rng, lift, margin=2.0 / 100)
    wrong = (codes[:, [0, 2]] == 1).any(axis=1) | ((codes[:, 1] == 1) & (sign[:, 1] < 0))
    assert wrong.mean() <= 0.05  # any "beats" on a null rate, or "B beats A" on clicks
    assert ((codes[:, 1] == 1) & (sign[:, 1] > 0)).mean() > 0.6  # the real lift is seen
    # a 2-point gap is never "equivalent within 2 points" beyond alpha
    assert (codes[:, 1] == 2).mean() <= 0.05
    # and equal rates are shown equivalent within 2 points on the rarer measures
    codes, _sign = simulate(rng, np.zeros(3), margin=2.0 / 100)
    assert (codes[:, 1] == 2).mean() > 0.6 and (codes == 1).mean() <= 0.05
    assert time.process_time() - started < 5


def test_without_correction_the_same_data_would_overclaim():
    """Why the family matters: three raw tests at 5 % name a false winner far more often."""
    rng = np.random.default_rng(11)
    xa = rng.binomial(N, BASE, size=(SIMS, 3))
    xb = rng.binomial(N, BASE, size=(SIMS, 3))
    p = stats.diff_pvalue(xa, N, xb, N)
    raw = (p <= 0.05).any(axis=1).mean()
    holm = (decide(p, np.full(p.shape, np.nan), 0.05, "holm")[0] == 1).any(axis=1).mean()
    assert holm < raw and raw > 0.08


# --- the sentences --------------------------------------------------------------------------


def people(groups):
    rows = []
    for seg, variant, status, n in groups:
        rows += [
            {
                "contact_id": f"c{len(rows) + i:05d}",
                "segment": seg,
                "variant": variant,
                "status": status,
                "sent_at": T0,
            }
            for i in range(n)
        ]
    out = pd.DataFrame(rows)
    out["contact_id"] = out["contact_id"].astype("string")
    return out


def tables(p: pd.DataFrame, clicks: dict[str, int], last: pd.Timestamp):
    """``clicks[variant]`` first recipients of each variant click; data run until ``last``."""
    ids = [cid for v, k in clicks.items() for cid in p.loc[p["variant"] == v, "contact_id"][:k]]
    events = pd.DataFrame(
        {
            "contact_id": pd.array(ids, dtype="string"),
            "campaign_id": "camp",
            "event": "click",
            "at": T0 + pd.Timedelta(hours=3),
        }
    )
    orders = pd.DataFrame(
        {"contact_id": pd.array(["zz"], dtype="string"), "ordered_at": [last], "amount": [1.0]}
    )
    return events, orders


def clicks_of(r):
    return next(c for c in r.comparisons if c.measure == "click")


def test_equivalence_only_from_tost_against_the_declared_margin(french):
    p = people([("s", "A", "done", 5000), ("s", "B", "done", 5000)])
    events, orders = tables(p, {"A": 500, "B": 505}, T0 + pd.Timedelta(days=20))
    later = T0 + pd.Timedelta(days=30)
    plain = clicks_of(build("camp", "r", p, events, orders, 14, {"camp"}, now=later))
    assert plain.outcome == "no_difference" and "jeu égal" not in plain.verdict
    assert plain.verdict.startswith(
        f"s B contre s A, le taux de clic{NNBSP}: pas de différence "
        f"démontrée{NNBSP}: +0,1 point (IC 95{NNBSP}% "
    )
    assert "ces effectifs ne pouvaient montrer qu'une différence d'au moins" in plain.verdict
    assert "déclarez kpi_mde" in plain.verdict
    r = build(
        "camp",
        "r",
        p,
        events,
        orders,
        14,
        {"camp"},
        now=later,
        settings=KpiConfig(kpi_margin=2.0, kpi_mde=1.5),
    )
    eq = clicks_of(r)
    assert eq.outcome == "equivalent" and eq.p_equivalence_adjusted <= 0.05
    assert eq.verdict.startswith(
        f"s B et s A font jeu égal sur le taux de clic à ±2 points "
        f"près{NNBSP}: +0,1 point (IC 90{NNBSP}% "
    )
    # 3 comparisons (3 rates; nobody bought: no revenue test), 6 tests (difference, equivalence)
    assert any("3 comparaisons (6 tests)" in n and "méthode de Holm" in n for n in r.notes)


def test_no_verdict_while_the_window_is_open_and_when_it_closes(french):
    p = people([("s", "A", "done", 1000), ("s", "B", "done", 1000)])
    events, orders = tables(p, {"A": 100, "B": 150}, T0 + pd.Timedelta(days=3))
    r = build("camp", "r", p, events, orders, 14, {"camp"}, now=T0 + pd.Timedelta(days=3))
    c = clicks_of(r)
    assert r.window_open and c.outcome == "window_open" and "bat" not in c.verdict
    assert "pas de verdict avant la clôture de la fenêtre d'attribution le 15 décembre 2026" in (
        c.verdict
    )
    assert any("elle se ferme le 15 décembre 2026 09:00 UTC" in n for n in r.notes)
    # the clock has passed the close but the source's data stop before: still no verdict
    r = build("camp", "r", p, events, orders, 14, {"camp"}, now=T0 + pd.Timedelta(days=40))
    assert clicks_of(r).outcome == "window_open"
    assert any("s'arrêtent le 4 décembre 2026" in n for n in r.notes)
    # data past the close: the verdict
    events, orders = tables(p, {"A": 100, "B": 150}, T0 + pd.Timedelta(days=16))
    r = build("camp", "r", p, events, orders, 14, {"camp"}, now=T0 + pd.Timedelta(days=40))
    assert clicks_of(r).outcome == "beats" and clicks_of(r).verdict.startswith("s B bat s A")


def test_a_baseline_is_described_never_beaten(french):
    p = people([("s", None, "done", 3000)])
    events = pd.DataFrame(
        {
            "contact_id": p["contact_id"][:900],
            "campaign_id": "camp",
            "event": "click",
            "at": T0 + pd.Timedelta(hours=1),
        }
    )
    orders = pd.DataFrame(
        {
            "contact_id": pd.array(["zz"], dtype="string"),
            "ordered_at": [T0 + pd.Timedelta(days=20)],
            "amount": [1.0],
        }
    )
    r = build("camp", "r", p, events, orders, 14, {"camp"}, now=T0 + pd.Timedelta(days=30))
    base = people([("generic", None, "done", 3000)]).assign(
        contact_id=lambda d: ("b" + d["contact_id"]).astype("string")
    )
    base_events = events.assign(contact_id=("b" + events["contact_id"][:300]).astype("string"))
    add_baseline(r, "generic", "g@1", base, base_events.dropna(), orders, {"camp"})
    described = [c for c in r.comparisons if c.second == "generic (référence)"]
    assert described and all(c.outcome in ("descriptive", "not_enough") for c in described)
    click = next(c for c in described if c.measure == "click" and c.first == "s")
    assert click.p is None and " bat " not in click.verdict  # 30 % vs 10 %: still no winner
    assert click.verdict.startswith(
        f"s comparé à generic (référence), le taux de clic{NNBSP}: "
        f"30{NNBSP}% contre 10{NNBSP}% (+20 points)"
    )
    assert "aucun vainqueur" in click.verdict


def test_english_workspace_reads_english_verdicts():
    p = people([("s", "A", "done", 1000), ("s", "B", "done", 1000)])
    events, orders = tables(p, {"A": 100, "B": 150}, T0 + pd.Timedelta(days=16))
    r = build(
        "camp",
        "r",
        p,
        events,
        orders,
        14,
        {"camp"},
        now=T0 + pd.Timedelta(days=40),
        settings=KpiConfig(kpi_correction="benjamini-hochberg"),
    )
    assert clicks_of(r).verdict.startswith("s B beats s A on the click rate: +5 points (95% CI")
    assert any("Benjamini–Hochberg" in n and "3 comparisons (3 tests)" in n for n in r.notes)


def test_campaign_settings_are_checked():
    with pytest.raises(ValidationError):
        KpiConfig(kpi_correction="bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        KpiConfig(kpi_margin=-1.0)
    assert KpiConfig().kpi_alpha == 0.05 and KpiConfig().kpi_margin is None
    # a campaign of segmerge.toml carries them, and a misspelt one is refused, not ignored
    from segmerge.workspace.config import CampaignConfig

    camp = {"source": "s", "rules": "r.yaml", "destination": "d"}
    assert CampaignConfig(**camp, kpi_margin=1.5).kpi_margin == 1.5
    with pytest.raises(ValidationError, match="kpi_marge"):
        CampaignConfig(**camp, kpi_marge=1.5)


def test_a_difference_only_significant_alone_is_not_a_winner_in_its_report(french):
    """Clicks 13 % vs 10 %: p = 0.036 alone, but the report made 3 tests (opens, clicks,
    conversion; nobody bought): Holm makes it 0.107, so no winner, and the page says why."""
    p = people([("s", "A", "done", 1000), ("s", "B", "done", 1000)])
    events, orders = tables(p, {"A": 100, "B": 130}, T0 + pd.Timedelta(days=16))
    r = build("camp", "r", p, events, orders, 14, {"camp"}, now=T0 + pd.Timedelta(days=40))
    c = clicks_of(r)
    assert c.p == pytest.approx(stats.diff_pvalue(130, 1000, 100, 1000)) and c.p < 0.05
    assert c.p_adjusted == pytest.approx(3 * c.p) and c.outcome == "no_difference"
    assert c.ci[0] > 0  # the raw 95 % interval alone would have excluded 0
    assert f"p = 0,036, 0,107 après correction){NNBSP}; ces effectifs" in c.verdict
    assert " bat " not in c.verdict
    assert any("3 comparaisons (3 tests)" in n for n in r.notes)


def test_the_window_closes_on_the_sources_coverage_not_on_this_campaigns_last_event(french):
    """A campaign's own clicks stop after a day; the source's data (any campaign's events,
    orders) going past the close is what lets the verdict through."""
    p = people([("s", "A", "done", 1000), ("s", "B", "done", 1000)])
    events, orders = tables(p, {"A": 100, "B": 150}, T0 + pd.Timedelta(days=1))
    later = T0 + pd.Timedelta(days=40)
    early = build("camp", "r", p, events, orders, 14, {"camp"}, now=later)
    assert clicks_of(early).outcome == "window_open"
    covered = build(
        "camp",
        "r",
        p,
        events,
        orders,
        14,
        {"camp"},
        now=later,
        data_until=T0 + pd.Timedelta(days=15),
    )
    assert clicks_of(covered).outcome == "beats" and not covered.window_open
