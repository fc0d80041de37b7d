"""Errors of the engine and the connectors read in French in a French workspace.

A French marketer meets these when the state is damaged, a credential is mistyped or a
platform refuses a key: English there (or "erreur : the ledger is...") reads as a foreign
tool at the worst moment. English stays word for word what it was (tests/ assert it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from segmerge import i18n
from segmerge.errors import ConfigError, CredentialError, RuleError
from segmerge.i18n import NNBSP
from segmerge.ledger.health import check_state
from segmerge.ports.http import HttpClient
from segmerge.ports.registry import load_class
from segmerge.rules.yamlpos import read_text
from segmerge.workspace.secrets import store
from segmerge.workspace.storage import StateError
from tests.fakes.base import FakeServer, Reply


@pytest.fixture()
def french() -> Iterator[None]:
    i18n.use_locale("fr_FR")
    yield
    i18n.use_locale("en")


def _state_with_garbage_ledger(tmp_path):
    (tmp_path / ".segmerge").mkdir()
    (tmp_path / ".segmerge" / "ledger.sqlite").write_bytes(b"not a database at all, sorry")
    return tmp_path


def test_a_damaged_ledger_is_told_in_french_with_its_fix(tmp_path, french):
    with pytest.raises(StateError) as info:
        check_state(_state_with_garbage_ledger(tmp_path))
    text = str(info.value)
    assert f"l'état de l'espace de travail est inutilisable{NNBSP}: " in text
    assert ".segmerge/ledger.sqlite n'est pas une base SQLite" in text
    assert f"conseil{NNBSP}: `segmerge doctor` dit ce qui ne va pas{NNBSP};" in text
    assert "the " not in text and "is not" not in text


def test_the_same_damaged_ledger_still_reads_in_english(tmp_path):
    with pytest.raises(StateError) as info:
        check_state(_state_with_garbage_ledger(tmp_path))
    assert "the workspace's state is not usable: .segmerge/ledger.sqlite is not an SQLite" in str(
        info.value
    )


def test_a_mistyped_secret_and_an_unknown_connector_are_refused_in_french(french):
    with pytest.raises(ConfigError) as typed:
        store("shop", " xkeysib-123")  # refused before any keyring is touched
    assert str(typed.value).startswith(
        f"shop{NNBSP}: le secret saisi pour shop commence par une espace ou un saut de ligne"
    )
    assert "relancez `segmerge auth set shop`" in str(typed.value)
    with pytest.raises(ConfigError) as unknown:
        load_class("brevoo", field_name="sources.shop.connector")
    assert "connecteur inconnu 'brevoo' (installés" in str(unknown.value)
    assert "un greffon s'enregistre" in str(unknown.value)


class Refusing(FakeServer):
    def __init__(self) -> None:
        super().__init__(None)
        self.route("GET", "/contacts", lambda r: Reply(401, {"message": "Key not found"}))


def test_a_refused_api_key_is_told_in_french_with_the_vendor_s_reason(french):
    with Refusing() as server:
        client = HttpClient("boutique", server.url, backoff=0.01, credential_hint="BREVO_KEY")
        with pytest.raises(CredentialError) as info:
            client.get("/contacts")
    text = str(info.value)
    assert (
        f"boutique{NNBSP}: GET /contacts a répondu 401{NNBSP}: l'identifiant a été refusé" in text
    )
    assert "Key not found" in text  # the vendor's own words are quoted, not translated
    assert "la clé (de BREVO_KEY) est fausse, expirée ou révoquée" in text


def test_a_rule_set_saved_as_latin_1_is_refused_in_french_at_its_byte(tmp_path, french):
    path = tmp_path / "regles.yaml"
    path.write_bytes("segments:\n  - name: Orléans\n".encode("latin-1"))
    with pytest.raises(RuleError) as info:
        read_text(path)
    text = str(info.value)
    assert f":2:14: le fichier n'est pas en UTF-8{NNBSP}: l'octet 0xE9 est illisible" in text
    assert "enregistrez-le de nouveau en UTF-8" in text
