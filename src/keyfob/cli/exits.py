"""The exit codes of the ``keyfob`` commands, and the one way a command stops on a known problem.

An operator's mistake (a settings file that is missing, a database URL that is not one, a broker
or database that does not answer, a port already taken) ends with one line on stderr naming
what to fix and a code a script can tell apart; a traceback means a bug. README lists the codes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NoReturn

import typer


class Exit(IntEnum):
    OK = 0
    REFUSED = 1
    """The command ran and refused: no such partner, a login already taken, ..."""
    USAGE = 2
    """A wrong option or an invalid setting (also click's own usage errors)."""
    SETTINGS_FILE = 3
    """The settings file is missing, unreadable or not valid TOML."""
    DATABASE = 4
    """The database URL cannot be used, or the database cannot be reached."""
    BROKER = 5
    """The MQTT broker cannot be reached or refuses the credentials."""
    LISTEN = 6
    """The address and port to listen on cannot be had (in use, not allowed, not here)."""


def stop(code: Exit, message: str) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(int(code))
