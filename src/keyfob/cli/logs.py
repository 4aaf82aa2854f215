"""``--log-level`` and ``--log-format``, shared by the long-running commands.

Both options also read ``KEYFOB_LOG_LEVEL`` and ``KEYFOB_LOG_FORMAT``, so a container or a unit
file can set them once for every process. The commands configure logging first thing, before
anything (uvicorn included) writes a line.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from keyfob.kit import logs


class Level(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


LogLevelOption = Annotated[
    Level,
    typer.Option(
        "--log-level",
        envvar="KEYFOB_LOG_LEVEL",
        case_sensitive=False,
        help="Lowest level logged, for keyfob and uvicorn alike.",
    ),
]
LogFormatOption = Annotated[
    Format,
    typer.Option(
        "--log-format",
        envvar="KEYFOB_LOG_FORMAT",
        case_sensitive=False,
        help="text: one readable line per record; json: one JSON object per line (time, "
        "level, logger, message and request_id, remote_id, callback_id where known).",
    ),
]


def setup(level: Level, form: Format) -> None:
    logs.configure(level.value, "json" if form is Format.JSON else "text")
