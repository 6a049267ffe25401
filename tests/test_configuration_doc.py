"""docs/configuration.md is generated from core.settings.Settings and documents every variable once."""

from __future__ import annotations

import msgspec

from core import settings_doc
from core.settings import ENV_VARS, FIELD_META, Settings


def test_configuration_doc_matches_settings() -> None:
    assert settings_doc.PATH.read_text(encoding="utf-8") == settings_doc.render(), (
        "docs/configuration.md drifted from Settings: run `python -m core.settings_doc`"
    )


def test_every_setting_has_one_variable_and_a_meaning() -> None:
    fields = [f.name for f in msgspec.structs.fields(Settings)]
    assert sorted(ENV_VARS.values()) == sorted(fields)  # one variable per field, none twice
    assert all(FIELD_META[f].description for f in fields)
    text = settings_doc.PATH.read_text(encoding="utf-8")
    for name in ENV_VARS:
        assert text.count(f"| `{name}` |") == 1
