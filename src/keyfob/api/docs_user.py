"""Pydantic shapes of the user face's read answers, used only to document ``/openapi.json``.

They mirror the b2c schemas (``User``, ``Status``) the handlers' plain dicts follow; the
vehicle and collection shapes are the fleet face's (``api.docs_models``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from keyfob.api.docs_models import Link


class User(BaseModel):
    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    email: str
    firstName: str | None = None
    lastName: str | None = None
    createdAt: str


class UserVehicleStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    createdAt: str
