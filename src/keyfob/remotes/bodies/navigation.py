"""The ``navigation`` action: a route of GeoJSON points sent to the car's navigation system.

Coordinates follow GeoJSON (RFC 7946): ``[longitude, latitude]`` with an optional altitude
(decision 14), so a route pasted in ``[lat, lon]`` order fails loudly whenever the latitude
slot holds a value beyond ±90 instead of sending the driver to the wrong place.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from keyfob.remotes.bodies.base import StrictModel, problem, show

MAX_POSITIONS = 10


class Point(StrictModel):
    """A GeoJSON Point: ``[lon, lat]`` or ``[lon, lat, alt]``."""

    type: Literal["Point"]
    coordinates: list[float]

    @field_validator("coordinates")
    @classmethod
    def _lon_lat(cls, coordinates: list[float]) -> list[float]:
        if not 2 <= len(coordinates) <= 3:
            raise problem(
                f"must hold 2 or 3 numbers [longitude, latitude(, altitude)] "
                f"(got {len(coordinates)})"
            )
        longitude, latitude = coordinates[0], coordinates[1]
        if not -180 <= longitude <= 180:
            raise problem(f"longitude must be within [-180, 180] (got {show(longitude)})", at=(0,))
        if not -90 <= latitude <= 90:
            raise problem(f"latitude must be within [-90, 90] (got {show(latitude)})", at=(1,))
        if len(coordinates) == 3 and not math.isfinite(coordinates[2]):
            raise problem(f"altitude must be a finite number (got {show(coordinates[2])})", at=(2,))
        return coordinates


class NavigationAction(StrictModel):
    """Body member ``navigation`` → RemoteType ``Navigation``; the last point is the goal."""

    positions: list[Point] = Field(min_length=1, max_length=MAX_POSITIONS)
    driver_approval: bool | None = None
