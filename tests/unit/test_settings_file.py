"""The commented example settings file lists every setting with its real default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from keyfob.config import Settings, load_settings

EXAMPLE = Path(__file__).parents[2] / "src" / "keyfob" / "settings.example.toml"


def _defaults(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _commented_keys(text: str) -> set[str]:
    return set(re.findall(r"^# ([a-z_]+) = ", text, flags=re.MULTILINE))


def _check(listed: dict[str, Any], defaults: dict[str, Any], text: str, where: str) -> None:
    """``listed`` (a table of the file) against ``defaults``; groups are checked key by key."""
    optional = {k for k, v in defaults.items() if v is None}
    assert optional <= _commented_keys(text), f"{where}optional settings are shown commented out"
    assert set(listed) | optional == set(defaults), where or "top level"
    for key, value in listed.items():
        if isinstance(value, dict) and isinstance(defaults[key], dict):
            _check(value, defaults[key], text, f"{where}{key}.")
            continue
        assert value == defaults[key], (
            f"{where}{key}: example says {value!r}, code says {defaults[key]!r}"
        )


def test_every_setting_is_listed_with_its_default() -> None:
    text = EXAMPLE.read_text()
    _check(tomllib.loads(text), _defaults(Settings()), text, "")


def test_the_file_loads_and_environment_wins(tmp_path: Path, monkeypatch: Any) -> None:
    config = tmp_path / "keyfob.toml"
    config.write_text("port = 9999\n[delivery]\ntimeout_s = 3.5\n")
    monkeypatch.setenv("KEYFOB_PORT", "7777")
    settings = load_settings(config)
    assert settings.port == 7777
    assert settings.delivery.timeout_s == 3.5
    assert load_settings(config, port=1234).port == 1234
