"""The French demo letters: every segment of every demo rule set renders, and reads right."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml

from segmerge.mail.message import build_message, message_id_for
from segmerge.render.templates import RenderContext, TemplateSet

ROOT = Path(__file__).resolve().parents[1]
UNSUB = "https://boutique-dimanche.fr/desabonnement?token=Zm9v"
CTX = RenderContext({"name": "demo", "id": "demo"}, date(2026, 3, 3), UNSUB)
# the columns the demo source and the metrics give (what `open_campaign` passes)
KNOWN = {
    "contact_id",
    "email",
    "first_name",
    "last_name",
    "subscribed",
    "created_at",
    "updated_at",
    "tags",
    "civilite",
    "age",
    "sexe",
    "ville",
    "code_postal",
    "region",
    "motivation",
    "comportement",
    "profil",
    "orders_count",
    "revenue",
    "avg_basket",
    "first_order_at",
    "last_order_at",
    "days_since_last_order",
    "days_since_first_order",
    "r_score",
    "f_score",
    "m_score",
    "rfm",
    "rfm_segment",
    "avg_rating",
    "max_rating",
}
CAMILLE = {
    "contact_id": "00042",
    "email": "camille.martin@example.fr",
    "first_name": "camille",
    "last_name": "MARTIN",
    "civilite": "Mme",
    "ville": "Lyon",
    "region": "Auvergne-Rhône-Alpes",
    "age": 41,
    "orders_count": 12,
    "revenue": 1234.5,
    "avg_basket": 102.875,
    "first_order_at": pd.Timestamp("2024-05-10 10:00", tz="UTC"),
    "last_order_at": pd.Timestamp("2026-03-02 23:30", tz="UTC"),
    "days_since_last_order": 190,
    "rfm_segment": "champions",
    "r_score": 5,
    "f_score": 4,
    "m_score": 5,
    "avg_rating": 4.66,
    "max_rating": 5.0,
    "tags": [],
}
RULE_SETS = ("profils-vpc", "rfm", "fidelite")


def segments(rules: str) -> list[tuple[str, str]]:
    spec = yaml.safe_load((ROOT / "segrules" / f"{rules}.yaml").read_text(encoding="utf-8"))
    return [(s["name"], s.get("label", s["name"])) for s in spec["segments"]]


@pytest.fixture(scope="module", params=RULE_SETS)
def demo(request) -> tuple[str, TemplateSet]:
    rules = request.param
    folder = ROOT / "templates" / rules
    return rules, TemplateSet.load(
        folder, segments(rules), tz=ZoneInfo("Europe/Paris"), known_columns=KNOWN
    )


def test_every_segment_renders_a_personal_complete_letter(demo):
    rules, ts = demo
    for name, _label in segments(rules):
        r = ts.render(name, CAMILLE, CTX)
        assert r.subject.startswith("Camille, ") and len(r.subject) < 90, r.subject
        assert "{{" not in r.subject + r.html + r.text
        assert f'href="{UNSUB}"' in r.html and UNSUB in r.text, name
        assert "La Boutique du Dimanche" in r.html and "69003 Lyon" in r.html
        assert 'width="600"' in r.html and "@media only screen" in r.html  # desktop and mobile
        assert "Bonjour Camille," in r.html and "Bonjour Camille," in r.text
        assert not re.search(r"<[a-z/!][^>]*>", r.text), f"HTML left in the text of {name}"


def test_a_contact_without_first_name_or_history_still_gets_a_polite_letter(demo):
    rules, ts = demo
    sparse = {
        **CAMILLE,
        "first_name": None,
        "last_order_at": pd.NaT,
        "first_order_at": pd.NaT,
        "avg_rating": float("nan"),
        "days_since_last_order": pd.NA,
    }
    for name, _label in segments(rules):
        r = ts.render(name, sparse, CTX)
        assert r.subject.startswith("Bonjour, "), r.subject
        assert "Bonjour Madame Martin," in r.html, name


def test_french_formatting_in_the_letters():
    f = TemplateSet.load(
        ROOT / "templates" / "profils-vpc",
        segments("profils-vpc"),
        tz=ZoneInfo("Europe/Paris"),
        known_columns=KNOWN,
    )
    fonceurs = f.render("fonceurs", CAMILLE, CTX)
    assert "12 commandes, dont la dernière le 3 mars 2026" in fonceurs.html  # Paris time
    assert "102,88\xa0€" in fonceurs.html and "89,90\xa0€" in fonceurs.text
    assert "en avant-première" in fonceurs.subject
    assert "moins de 20\xa0€" in f.render("prudents", CAMILLE, CTX).html
    assert "Prendre le temps, en mars" in f.render("zens", CAMILLE, CTX).html


def test_rfm_and_loyalty_letters_use_the_contact_figures():
    rfm = TemplateSet.load(
        ROOT / "templates" / "rfm",
        segments("rfm"),
        tz=ZoneInfo("Europe/Paris"),
        known_columns=KNOWN,
    )
    assert (
        "12 commandes pour un total de 1\u202f234,50\xa0€"
        in rfm.render("champions", CAMILLE, CTX).html
    )
    assert rfm.template_for("endormis").endswith("rfm/_default.html.j2")
    assert rfm.render("endormis", CAMILLE, CTX).subject == "Camille, vous nous avez manqué"
    assert rfm.render("fideles", CAMILLE, CTX).subject == "Camille, merci pour votre fidélité"
    fid = TemplateSet.load(
        ROOT / "templates" / "fidelite",
        segments("fidelite"),
        tz=ZoneInfo("Europe/Paris"),
        known_columns=KNOWN,
    )
    assert "RETOUR-00042" in fid.render("code_promo", CAMILLE, CTX).html
    assert "4,7/5 en moyenne" in fid.render("ambassadeurs", CAMILLE, CTX).html
    assert "Cela fait 6 mois" in fid.render("reconquete", CAMILLE, CTX).html


def test_a_demo_letter_becomes_a_valid_message(demo):
    rules, ts = demo
    name = segments(rules)[0][0]
    r = ts.render(name, CAMILLE, CTX)
    msg = build_message(
        r,
        to=CAMILLE["email"],
        to_name="Camille Martin",
        from_addr="La Boutique du Dimanche <bonjour@boutique-dimanche.fr>",
        message_id=message_id_for(f"{rules}|00042", "boutique-dimanche.fr"),
        unsubscribe_url=UNSUB,
    )
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == r.subject
    html = parsed.get_body(("html",)).get_content()
    assert r.preheader and html.index(r.preheader) < html.index("Bonjour Camille")


def test_the_fast_paths_render_exactly_what_the_stock_sandbox_renders(demo):
    """The Sandbox's short cuts (contact, dict and loop lookups, flattened globals, the
    fast escape) are speed only: every demo letter, HTML and text, is the very string
    Jinja's own ImmutableSandboxedEnvironment renders from the same files and filters."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from segmerge.render.env import FolderLoader, StrictValues, autoescape, present_values
    from segmerge.render.filters import make_filters

    rules, ts = demo
    folder = ROOT / "templates" / rules
    stock = ImmutableSandboxedEnvironment(
        loader=FolderLoader([folder, folder.parent / "_shared"]),
        autoescape=autoescape,
        undefined=StrictValues,
    )
    stock.filters.update(make_filters("fr_FR", ZoneInfo("Europe/Paris"), "EUR"))
    people = [
        CAMILLE,
        {
            **CAMILLE,
            "first_name": None,
            "orders_count": 1,
            "revenue": 19.9,
            "avg_basket": 19.9,
            "last_order_at": pd.NaT,
        },
    ]
    checked = 0
    for name, label in segments(rules):
        html_file = ts.template_for(name)
        for person in people:
            try:
                ours = ts.render(name, person, CTX)
            except Exception:  # noqa: BLE001 - a letter this contact cannot fill: not compared
                continue
            variables = {
                "contact": present_values(person),
                "campaign": CTX.campaign,
                "segment": {"name": name, "label": label},
                "today": CTX.today,
                "unsubscribe_url": UNSUB,
            }
            theirs = stock.get_template(Path(html_file).name).render(variables).strip()
            assert ours.html == theirs, (name, person["first_name"])
            text_file = Path(html_file).name.replace(".html.j2", ".txt.j2")
            if (folder / text_file).exists():
                assert ours.text == stock.get_template(text_file).render(variables).strip()
            checked += 1
    assert checked >= len(segments(rules))
