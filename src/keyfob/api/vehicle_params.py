"""The query parameters of the vehicle reads, as the official specification names them.

Both faces take them on the same reads (decision 31): ``vinPrefix`` filters a vehicle list,
``extension`` embeds extra documents, ``locale`` names the reader's language. A value outside
the documented enum or pattern is a 400 (``INVALID_QUERY``), never silently ignored. keyfob's
texts are in English whatever the locale; it is checked, and kept in the list's links.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

Extension = Literal["onboardCapabilities", "branding", "pictures"]
"""``VehicleExtensionType``: what a single vehicle's read may embed."""

ListExtension = Literal["branding", "pictures"]
"""``VehiclesExtensionType``: what a fleet's vehicle list may embed."""

LOCALE_PATTERN = r"^[A-Za-z0-9_]+(-[A-Za-z0-9_]+)?$"
"""The specification's ``\\w(-\\w)?``, one or more word characters either side (``fr-FR``,
``en_GB``, ``de``)."""

Extensions = Annotated[
    list[Extension] | None,
    Query(max_length=3, description="Embed these under _embedded.extension."),
]
ListExtensions = Annotated[
    list[ListExtension] | None,
    Query(max_length=2, description="Accepted as documented; keyfob has nothing to embed."),
]
Locale = Annotated[
    str | None,
    Query(
        max_length=35,
        pattern=LOCALE_PATTERN,
        description="Language and country (fr-FR); keyfob's texts are in English.",
    ),
]
VinPrefix = Annotated[
    str | None,
    Query(alias="vinPrefix", max_length=17, description="Only VINs starting with this."),
]
