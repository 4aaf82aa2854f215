"""Building blocks shared by every action model: strictness, durations, timestamps, weekdays.

The contract is loose about types (a client may send ``"true"`` where a boolean is due); keyfob
is not, because a command to a car must mean exactly one thing. Every model therefore refuses
coercion, null values and unknown fields, and each check raises an error whose text is the
final, user-facing sentence so ``bodies.problems`` can prefix it with the JSON path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

SECONDS_PER_DAY = 24 * 3600

_DURATION = re.compile(r"P(?:0D)?T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})",
)


def problem(message: str, *, at: Sequence[str | int] = ()) -> PydanticCustomError:
    """An error whose ``message`` is shown as is; ``at`` extends the path below the model."""
    return PydanticCustomError("keyfob", "{message}", {"message": message, "at": tuple(at)})


def show(value: object) -> str:
    """A short rendering of a rejected value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


def seconds_from_midnight(text: str) -> int:
    """``PT14H30M`` → 52200. Raises ``ValueError`` unless a time-of-day duration under 24 h."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.group(part) for part in ("h", "m", "s")):
        raise ValueError(text)
    hours, minutes, seconds = (int(match.group(part) or 0) for part in ("h", "m", "s"))
    total = hours * 3600 + minutes * 60 + seconds
    if total >= SECONDS_PER_DAY:
        raise ValueError(text)
    return total


def check_time_of_day(value: str | None) -> str | None:
    """Field check for ``start`` / ``end``: an ISO-8601 duration from midnight, below 24 h."""
    if value is None:
        return None
    try:
        seconds_from_midnight(value)
    except ValueError:
        raise problem(
            "must be an ISO-8601 duration from midnight below 24 hours, "
            f"like PT14H30M or PT0S (got {show(value)})"
        ) from None
    return value


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp with its offset; raises ``ValueError`` otherwise."""
    if _RFC3339.fullmatch(text) is None:
        raise ValueError(text)
    return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))


def check_timestamp(value: str | None) -> str | None:
    """Field check for ``nextDelayedTime``: a real date and time with a time zone."""
    if value is None:
        return None
    try:
        parse_timestamp(value)
    except ValueError:
        raise problem(
            "must be an RFC 3339 timestamp with a time zone, like 2024-01-01T22:30:00Z "
            f"(got {show(value)})"
        ) from None
    return value


class StrictModel(BaseModel):
    """Camel-case JSON names, no coercion, no unknown fields (named with the allowed ones)."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = [field.alias or name for name, field in cls.model_fields.items()]
            unknown = [str(key) for key in data if key not in allowed]
            if unknown:
                raise problem(
                    f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                    f"(allowed: {', '.join(allowed)})"
                )
        return data

    def to_stored(self) -> dict[str, Any]:
        """The JSON form keyfob stores and echoes: absent optionals omitted, defaults filled."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Occurence(StrictModel):
    """The weekdays a program runs on (the contract spells the member ``occurence``)."""

    day: list[Day] = Field(min_length=1)

    @field_validator("day")
    @classmethod
    def _no_repeated_day(cls, days: list[Day]) -> list[Day]:
        repeated = sorted({day for day in days if days.count(day) > 1})
        if repeated:
            raise problem(f"lists {', '.join(repeated)} more than once")
        return days


def check_unique_slots(slots: Sequence[int | None]) -> None:
    """Raise when a program slot number is used twice in one list."""
    seen: set[int] = set()
    for index, slot in enumerate(slots):
        if slot is None:
            continue
        if slot in seen:
            raise problem(f"slot {slot} is used by more than one program", at=(index, "slot"))
        seen.add(slot)
