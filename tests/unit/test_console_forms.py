"""The console's remote forms: one per action of the API, bodies the API reads, and its
refusals placed at the field they name."""

from __future__ import annotations

import pytest

from keyfob.api.console.remote_form import BY_ACTION, FORMS, body_of, place
from keyfob.errors import KeyfobError
from keyfob.remotes.schemas import ACTIONS, parse_remote_body


def test_every_action_of_the_api_has_a_form() -> None:
    assert sorted(form.action for form in FORMS) == sorted(ACTIONS)


def test_a_filled_form_is_the_apis_body_and_empty_fields_are_left_out() -> None:
    charging = BY_ACTION["charging"]
    sent = {
        "charging.immediate": "",
        "charging.schedule.nextDelayedTime": "2026-01-01T22:30:00Z",
        "charging.preferences.level": "",
        "label": "night",
    }
    body = body_of(charging, sent)
    assert body == {
        "charging": {"schedule": {"nextDelayedTime": "2026-01-01T22:30:00Z"}},
        "label": "night",
    }
    assert parse_remote_body(body).type.value == "ElectricBatteryChargingRequest"
    stolen = body_of(BY_ACTION["stolen"], {"stolen.trackingPeriod.running": "30"})
    assert stolen == {"stolen": {"trackingPeriod": {"running": 30}}}


def test_a_refusal_lands_at_the_deepest_field_its_path_names() -> None:
    navigation = BY_ACTION["navigation"]
    body = body_of(navigation, {"navigation.positions": '[{"type": "Point"}]'})
    with pytest.raises(KeyfobError) as refused:
        parse_remote_body(body)
    problems = place(navigation, refused.value.message)
    assert list(problems.at_field) == ["navigation.positions"]
    assert problems.at_field["navigation.positions"][0].startswith("[0].coordinates: ")
    general = place(BY_ACTION["charging"], "charging: must contain at least one of immediate")
    assert general.general == ["charging: must contain at least one of immediate"]
    assert not general.at_field
