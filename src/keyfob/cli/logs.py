"""``--log-level`` and ``--log-format`` (and the metrics listener), shared by the long-running
commands.

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


MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        envvar="KEYFOB_METRICS_PORT",
        help="Serve this process's Prometheus counters on http://HOST:PORT/metrics (the API "
        "serves its own on /metrics; a dispatcher or worker alone serves none without this).",
    ),
]
MetricsHostOption = Annotated[
    str,
    typer.Option(
        "--metrics-host",
        envvar="KEYFOB_METRICS_HOST",
        help="Address the --metrics-port listener binds (0.0.0.0 in a container).",
    ),
]
