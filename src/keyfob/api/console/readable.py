"""Turning JSON documents (status, capabilities) into lines a person reads, and a position
into a point on a plain SVG grid (map tiles would need the network; the console must not)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyfob.kit.clock import isoformat

MAX_LINES = 400


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Position:
    longitude: float
    latitude: float
    heading: float | None

    @property
    def x(self) -> float:
        return round(self.longitude, 4)

    @property
    def y(self) -> float:
        return round(-self.latitude, 4)


def _scalar(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "—"
    return str(value)


def lines(document: dict[str, Any] | None, skip: tuple[str, ...] = ("_links",)) -> list[Line]:
    """``doorsState / lockedStates: Locked`` for every leaf, in the document's order."""
    found: list[Line] = []

    def walk(value: Any, name: str) -> None:
        if len(found) >= MAX_LINES:
            return
        if isinstance(value, dict):
            for key, inner in value.items():
                if key not in skip:
                    walk(inner, f"{name} / {key}" if name else str(key))
        elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            for index, inner in enumerate(value):
                walk(inner, f"{name} [{index + 1}]")
        elif isinstance(value, list):
            found.append(Line(name, ", ".join(_scalar(v) for v in value) or "—"))
        else:
            found.append(Line(name, _scalar(value)))

    walk(document or {}, "")
    return found


def position(status: dict[str, Any] | None) -> Position | None:
    """Where the vehicle last said it was (``lastPosition``, a GeoJSON point)."""
    feature = (status or {}).get("lastPosition")
    if not isinstance(feature, dict):
        return None
    coordinates = (feature.get("geometry") or {}).get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        return None
    longitude, latitude = coordinates[0], coordinates[1]
    if not all(isinstance(c, int | float) for c in (longitude, latitude)):
        return None
    heading = (feature.get("properties") or {}).get("heading")
    return Position(
        float(longitude), float(latitude), heading if isinstance(heading, int | float) else None
    )


def when(moment: datetime | None) -> str:
    return isoformat(moment) if moment is not None else "never"
