"""The console's remote forms, built from the body models the API validates with.

Each of the nine actions of ``remotes.schemas.ACTIONS`` gets a form whose fields are the
model's own: a ``Literal`` is a list to choose from, a ``bool`` a yes/no choice, an ``int`` a
number, a ``str`` a text field, a nested model a group of fields, a list a JSON text area. A
field's name is its JSON path (``charging.schedule.nextDelayedTime``), so the body a form
builds is the API's body, and the API's refusal (``path: what is wrong; ...``) lands at the
field it names. Nothing is checked here that the API does not check itself.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import BaseModel

from keyfob.remotes.schemas import ACTIONS

HINTS = {
    "nextDelayedTime": "an RFC 3339 time, like 2026-01-01T22:30:00Z",
    "start": "a time of day, like PT14H30M",
    "end": "a time of day, like PT16H",
    "running": "seconds, at least 5",
    "shutdown": "seconds, at least 60",
    "positions": 'like [{"type": "Point", "coordinates": [2.35, 48.85]}]',
    "programs": "a JSON list of program objects",
}
"""A line under a field saying what it takes (the API's own messages say it when it is not)."""

DEPRECATED = {"door.forced", "charging.nextDelayedTime"}
"""Members the contract keeps for old clients; the console does not offer them."""

ACTION_TITLES = {  # every member of ACTIONS, in the order the page shows them
    "door": "Doors",
    "horn": "Horn",
    "lights": "Lights",
    "charging": "Charging",
    "preconditioning": "Air conditioning",
    "wakeUp": "Wake-up",
    "navigation": "Navigation",
    "immobilization": "Immobilization",
    "stolen": "Stolen vehicle",
}


@dataclass(frozen=True, slots=True)
class Field:
    path: str
    label: str
    kind: str
    """``select``, ``number``, ``text`` or ``json``."""
    required: bool
    options: tuple[str, ...] = ()
    depth: int = 0
    hint: str | None = None

    @property
    def html_id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass(frozen=True, slots=True)
class ActionForm:
    action: str
    title: str
    remote_type: str
    fields: tuple[Field, ...]


@dataclass
class Problems:
    """The API's refusal, split by where it belongs."""

    at_field: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)


def _words(alias: str) -> str:
    spaced = "".join(f" {c.lower()}" if c.isupper() else c for c in alias)
    return spaced[:1].upper() + spaced[1:]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None``, and whether ``None`` was allowed."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return inner[0], True
    return annotation, False


def _fields(model: type[BaseModel], prefix: str, depth: int, optional: bool) -> list[Field]:
    found: list[Field] = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        path = f"{prefix}.{alias}"
        if path in DEPRECATED:
            continue
        annotation, nullable = _unwrap(info.annotation)
        required = info.is_required() and not nullable and not optional
        label = _words(alias)
        hint = HINTS.get(alias)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.append(Field(path, label, "group", required, depth=depth))
            found += _fields(annotation, path, depth + 1, optional or not required)
        elif get_origin(annotation) is Literal:
            options = tuple(str(a) for a in get_args(annotation))
            found.append(Field(path, label, "select", required, options, depth))
        elif annotation is bool:
            found.append(Field(path, label, "select", required, ("true", "false"), depth))
        elif annotation is int or annotation is float:
            found.append(Field(path, label, "number", required, depth=depth, hint=hint))
        elif get_origin(annotation) is list:
            label = f"{label} (JSON list)"
            found.append(Field(path, label, "json", required, depth=depth, hint=hint))
        else:
            found.append(Field(path, label, "text", required, depth=depth, hint=hint))
    return found


def _build() -> tuple[ActionForm, ...]:
    forms = []
    for action in ACTION_TITLES:  # the everyday ones first
        remote_type, model = ACTIONS[action]
        fields = tuple(_fields(model, action, 0, optional=False))
        forms.append(ActionForm(action, ACTION_TITLES[action], remote_type.value, fields))
    return tuple(forms)


FORMS = _build()
BY_ACTION = {form.action: form for form in FORMS}


def _value(kind: str, text: str) -> Any:
    if kind == "select" and text in ("true", "false"):
        return text == "true"
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text  # the API names the field and says it must be a number
    if kind == "json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text  # the API says the field must be a list
    return text


def body_of(form: ActionForm, sent: dict[str, str]) -> dict[str, Any]:
    """The remote body the form's fields spell; an empty field is an absent member."""
    action: dict[str, Any] = {}
    for item in form.fields:
        text = sent.get(item.path, "").strip()
        if item.kind == "group" or not text:
            continue
        here = action
        parts = item.path.split(".")[1:]
        for part in parts[:-1]:
            here = here.setdefault(part, {})
        here[parts[-1]] = _value(item.kind, text)
    body: dict[str, Any] = {form.action: action}
    label = sent.get("label", "").strip()
    if label:
        body["label"] = label
    return body


def place(form: ActionForm, message: str) -> Problems:
    """Each ``path: text`` of the API's message at the deepest field its path starts with."""
    return place_at([f.path for f in form.fields], message)


def place_at(fields: list[str], message: str) -> Problems:
    """``place`` for any form whose field names are the JSON paths of its body."""
    problems = Problems()
    paths = sorted(fields, key=len, reverse=True)
    for line in message.split("; "):
        path, separator, text = line.partition(": ")
        owner = next(
            (p for p in paths if separator and (path == p or path.startswith((p + ".", p + "[")))),
            None,
        )
        if owner is None:
            problems.general.append(line)
        else:
            shown = text if path == owner else f"{path[len(owner) :].lstrip('.')}: {text}"
            problems.at_field.setdefault(owner, []).append(shown)
    return problems
