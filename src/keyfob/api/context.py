"""What the request handlers share: settings, database, clock, caches. Built by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyfob.auth.ratelimit import RateLimiter
from keyfob.auth.service import CredentialCache
from keyfob.callbacks.targets import TargetPolicy
from keyfob.config import Settings
from keyfob.db import Database
from keyfob.kit.clock import Clock
from keyfob.remotes.accept import Acceptor


@dataclass
class AppContext:
    settings: Settings
    database: Database
    clock: Clock
    target_policy: TargetPolicy
    acceptor: Acceptor
    credentials: CredentialCache = field(default_factory=CredentialCache)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    extras: dict[str, Any] = field(default_factory=dict)
