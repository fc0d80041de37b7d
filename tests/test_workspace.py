"""segmerge.toml validation: each mistake names the file, the line and the key."""

from __future__ import annotations

import pytest

from segmerge.errors import ConfigError
from segmerge.workspace import config as workspace

BASE = """\
timezone = "Europe/Paris"

[sources.demo]
connector = "files"
path = "data"

[destinations.outbox]
connector = "outbox"

[campaigns.profils]
source = "demo"
rules = "r.yaml"
destination = "outbox"
"""


def _ws(tmp_path, text):
    (tmp_path / "segmerge.toml").write_text(text, encoding="utf-8")
    (tmp_path / "r.yaml").write_text("version: 1\n", encoding="utf-8")
    return workspace.load(tmp_path)


def test_valid_config_and_defaults(tmp_path):
    ws = _ws(tmp_path, BASE)
    c = ws.campaign("profils")
    assert c.tag_prefix == "seg:"
    assert ws.templates_dir(c) == tmp_path / "templates" / "r"
    assert ws.config.sources["demo"].settings() == {"path": "data"}
    assert str(ws.tz) == "Europe/Paris"


def test_unknown_time_zone_names_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        _ws(tmp_path, BASE.replace("Europe/Paris", "Europe/Pariss"))
    assert e.value.line == 1 and e.value.field == "timezone"
    assert "Europe/Pariss" in str(e.value)


def test_typo_in_campaign_key_is_an_error_with_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        _ws(tmp_path, BASE + 'destinaton = "x"\n')
    assert e.value.field == "campaigns.profils.destinaton"
    assert e.value.line == 14
    assert "unknown setting" in str(e.value)


def test_missing_required_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        _ws(tmp_path, BASE.replace('source = "demo"\n', ""))
    assert e.value.field == "campaigns.profils.source"
    assert "required" in str(e.value)


def test_unknown_source_reference(tmp_path):
    with pytest.raises(ConfigError) as e:
        _ws(tmp_path, BASE.replace('source = "demo"', 'source = "shop"'))
    assert e.value.line == 11 and "unknown source 'shop'" in str(e.value)


def test_toml_syntax_error_has_position(tmp_path):
    with pytest.raises(ConfigError) as e:
        _ws(tmp_path, BASE + "oops = \n")
    assert e.value.line == 14 and str(e.value).startswith(str(tmp_path / "segmerge.toml"))


def test_missing_config_file_hints_init(tmp_path):
    with pytest.raises(ConfigError) as e:
        workspace.load(tmp_path)
    assert "segmerge init" in (e.value.hint or "")


def test_unsubscribe_url_needs_token(tmp_path):
    with pytest.raises(ConfigError) as e:
        _ws(tmp_path, '[mail]\nunsubscribe_url = "https://x.fr/u"\n' + BASE.split("\n", 1)[1])
    assert e.value.field == "mail.unsubscribe_url" and e.value.line == 2
