"""Which background roles run beside the API in ``keyfob serve``."""

from __future__ import annotations

from collections.abc import Sequence

from keyfob.api.app import Role
from keyfob.config import Settings


def embedded_roles(settings: Settings) -> Sequence[Role]:
    return ()
