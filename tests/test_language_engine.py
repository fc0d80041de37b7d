"""The engine's sentences (contact pressure, report quality) in the workspace's language.

The ledger and the run summary keep English keys (they are data); what a marketer
reads (the policy, the held-back note, a setting's error) follows the language.
"""

from __future__ import annotations

import pytest

from segmerge import i18n
from segmerge.i18n import NNBSP
from segmerge.workspace.pressure import PressureConfig


@pytest.fixture
def french():
    i18n.use_locale("fr_FR")
    yield
    i18n.use_locale("en")


def test_the_pressure_policy_reads_in_french_and_the_ledger_stays_english(french):
    cfg = PressureConfig(
        max_messages=2, per_days=7, quiet_hours="21:00-08:00", quiet_days=["dimanche"]
    )
    assert cfg.shown() == (
        "au plus 2 messages sur 7 jours; pas d'envoi 21:00-08:00; pas d'envoi le dimanche"
    )
    assert cfg.describe().startswith("at most 2 message(s) per 7 day(s)")  # ledger detail
    assert PressureConfig().shown() == "au plus 1 message sur 1 jour"  # French singular


def test_a_bad_pressure_setting_is_told_in_french(french):
    with pytest.raises(ValueError, match="n'est pas une plage horaire"):
        PressureConfig(quiet_hours="25:00-08:00")
    with pytest.raises(ValueError, match="jour inconnu 'dimenche'"):
        PressureConfig(quiet_days=["dimenche"])


def test_english_is_the_msgid():
    assert PressureConfig(max_messages=1, per_days=7).shown() == "at most 1 message per 7 days"
    assert NNBSP not in PressureConfig(quiet_days=["sun"]).shown()


def test_a_rule_set_mistake_is_told_in_french(french, tmp_path):
    from segmerge.errors import RuleError
    from segmerge.rules.loading import load_ruleset

    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nsegment:\n  - name: a\n    when: true\n", encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.message == (
        f"clé 'segment' inconnue dans un jeu de règles{NNBSP}; vouliez-vous dire 'segments'{NNBSP}?"
    )
    path.write_text("version: 1\nsegments: [a\n", encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.message.startswith(f"YAML invalide{NNBSP}: ")  # PyYAML's own words follow


def test_a_condition_syntax_error_is_told_in_french(french):
    from segmerge.rules.parser import ExprError, parse

    with pytest.raises(ExprError) as err:
        parse("age = 30")
    assert err.value.message.startswith(f"inattendu{NNBSP}: '='{NNBSP}; attendu{NNBSP}: ")
    assert err.value.hint == "pour comparer, écrivez =="
    with pytest.raises(ExprError) as err:
        parse("age >")
    assert err.value.message.startswith(f"inattendu{NNBSP}: fin de la condition{NNBSP}; attendu")
    assert "une valeur (un nombre" in err.value.message


def test_history_says_the_ledger_words_in_french_and_keeps_the_keys(french):
    from segmerge.cli.history import counts_text, said

    assert said("partial") == "partiel" and said("done") == "fait" and said(None) == ""
    text = counts_text({"send": {"done": 2052, "failed": 3}})
    assert text == f"envoi{NNBSP}: 2{NNBSP}052 fait, 3 échoué"
    assert said("no-such-word") == "no-such-word"  # an unknown key is shown, never dropped


def test_why_a_contact_is_not_mailed_is_said_in_french_and_kept_english(french):
    import pandas as pd

    from segmerge.mail.consent import REASONS, not_mailable, said

    frame = pd.DataFrame(
        {
            "contact_id": ["1", "2", "3"],
            "email": ["a b@x.fr", "b@x.fr", "c@x.fr"],
            "subscribed": [True, False, True],
        }
    )
    events = pd.DataFrame(columns=["contact_id", "campaign_id", "event", "at"])
    reasons = not_mailable(frame, events, {"c@x.fr"})
    # the keys stay English (the run summary and the ledger keep them) ...
    assert reasons.tolist() == [
        "address cannot be used: space inside",
        "not subscribed",
        "on the suppression list",
    ]
    # ... and the marketer reads them in French
    assert [said(r) for r in reasons] == [
        f"adresse inutilisable{NNBSP}: espace à l'intérieur",
        "non abonné",
        "sur la liste de blocage",
    ]
    assert all(said(r) != r for r in REASONS.values())  # every reason has its French
    assert said("holdout (control group)") != "holdout (control group)"  # a summary note too
    assert said("a reason nobody knows") == "a reason nobody knows"


@pytest.mark.parametrize(
    ("text", "where", "said"),
    [
        ("version: 1\nsegments:\n\t- name: a\n", (3, 1), "une tabulation"),
        ("version: 1\nname: a\n    when: age: 3\n", (3, 9), "là où aucune valeur"),
        ("version: 1\nsegments:\n  - name: a\n    when x\n    label: b\n", (4, 5), "sans «"),
        ("version: 1\nsegments:\n  - name: a\n    when: x\n   label: b\n", (5, 4), "alignée"),
        ("version: 1\nsegments: [a\n", (3, 1), "ouverte par «\u202f[\u202f» ligne 2"),
        ("version: 1\nname: 'abc\n", (2, 7), "guillemet ouvert ligne 2"),
        ("version: 1\nname: `a`\n", (2, 7), "commencer par '`'"),
        ("version: 1\nname: *abc\n", (2, 7), "«\u202f*\u202f»"),
    ],
)
def test_a_yaml_slip_is_told_in_french_at_its_line(french, tmp_path, text, where, said):
    from segmerge.errors import RuleError
    from segmerge.rules.loading import load_ruleset

    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.message.startswith(f"YAML invalide{NNBSP}: ")
    assert said in err.value.message
    assert (err.value.line, err.value.column) == where
    assert "found" not in err.value.message and "expected" not in err.value.message


def test_an_unusual_yaml_problem_keeps_pyyaml_s_words_in_parentheses(french, tmp_path):
    from segmerge.errors import RuleError
    from segmerge.rules.loading import load_ruleset

    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nname: |x\n  a\n", encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_ruleset(path)
    assert err.value.message.startswith(f"YAML invalide{NNBSP}: (expected chomping")
