"""Settings, built once at the entry point and passed down (never read at import time).

Every setting has a ``KEYFOB_`` environment variable (nested groups use ``__``), and
``settings.example.toml`` lists them all with their defaults; a test keeps the two in step.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class RateLimitSettings(BaseModel):
    """Per-partner budgets (§9.1): a sliding day window and a one-second burst window; failed
    logins on the fleet face, per login and per client address, within ``login_window_s``."""

    day: int = Field(100_000, ge=1)
    burst: int = Field(100, ge=1)
    login_failures: int = Field(5, ge=1)
    login_failures_per_address: int = Field(20, ge=1)
    login_window_s: float = Field(900.0, gt=0)


class VehicleSettings(BaseModel):
    """Numbers the contract leaves open (decision 19)."""

    awake_window_s: float = Field(180.0, gt=0)
    wake_up_quota_per_month: int = Field(100, ge=0)
    short_window_wake_ups: int = Field(6, ge=0)
    short_window_s: float = Field(1200.0, gt=0)
    wake_up_timeout_s: float = Field(60.0, gt=0)
    command_timeout_s: float = Field(60.0, gt=0)
    low_battery_percent: float = Field(15.0, ge=0, le=100)


class DeliverySettings(BaseModel):
    timeout_s: float = Field(10.0, gt=0)
    allow_private_webhooks: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)
    max_connections: int = Field(200, ge=1)
    max_connections_per_host: int = Field(20, ge=1)
    lease_s: float = Field(30.0, gt=0)
    batch_claim: int = Field(1000, ge=1)
    websocket_ping_s: float = Field(20.0, gt=0)
    websocket_idle_s: float = Field(300.0, gt=0)
    record_every_s: float = Field(0.01, ge=0)
    """Finished attempts are written together, one transaction per this interval at most."""
    poll_s: float = Field(0.25, gt=0)
    """The worker looks for due notifications this often when nothing wakes it (retries
    falling due, rows stored by processes that cannot nudge it)."""
    inline: bool | None = None
    """A dispatcher runs a delivery worker in its own process and hands it the notifications
    of the events it stores, leased in the same transaction, with no claim between
    (``notifications.handover``); other workers take what it does not (retries, leases that
    expired). Off: dispatchers only store, and workers claim everything. Unset: on with SQLite,
    whose one write lock every claim waits for; off with PostgreSQL, where a worker process of
    its own claims cheaply and uses a core the dispatcher's process does not have to share
    (``docs/benchmarks.md``, 7 December, night)."""


class PushSettings(BaseModel):
    """FCM (HTTP v1) for push callbacks; push is offered once a service-account key is set."""

    fcm_url: str = "https://fcm.googleapis.com"
    project_id: str | None = None
    """Default: the key file's ``project_id``."""
    service_account_file: Path | None = None
    token_url: str | None = None
    """Default: the key file's ``token_uri``."""
    timeout_s: float = Field(10.0, gt=0)

    @property
    def configured(self) -> bool:
        return self.service_account_file is not None


class OAuthSettings(BaseModel):
    """The user face's authorization server: token lifetimes, revocation, sign-in throttling."""

    access_token_ttl_s: int = Field(3600, ge=60)
    refresh_token_ttl_s: int = Field(180 * 86_400, ge=3600)
    id_token_ttl_s: int = Field(3600, ge=60)
    code_ttl_s: int = Field(60, ge=1)
    revocation_poll_s: float = Field(0.5, gt=0, le=1.0)
    key_reload_s: float = Field(60.0, gt=0)
    token_cache_size: int = Field(10_000, ge=1)
    login_failures: int = Field(5, ge=1)
    login_failures_per_address: int = Field(20, ge=1)
    login_window_s: float = Field(900.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEYFOB_", env_nested_delimiter="__", extra="forbid"
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    db: str = "sqlite:///keyfob.db"
    db_pool_size: int = Field(10, ge=1)
    db_connect_timeout_s: float = Field(5.0, gt=0)
    db_statement_timeout_s: float = Field(10.0, gt=0)
    db_pool_timeout_s: float = Field(5.0, gt=0)
    db_busy_timeout_s: float = Field(5.0, gt=0)
    db_retry_after_s: int = Field(5, ge=1)
    db_sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """SQLite: FULL (a 202 survives a power loss, decision 32) or NORMAL (faster commits)."""
    db_sqlite_checkpoint_every_s: float = Field(0.1, ge=0)
    """SQLite: WAL checkpoints on a thread of their own this often; 0 leaves them to SQLite,
    inside the commit that fills the log (``store.checkpoints``)."""
    db_upkeep: Literal["auto", "on", "off"] = "auto"
    """PostgreSQL: keyfob vacuums and analyses its own tables by autovacuum's rule ("auto":
    while the server's autovacuum is off; "on": always; "off": never; ``store.upkeep``)."""
    db_upkeep_every_s: float = Field(5.0, gt=0)
    """PostgreSQL: how often that upkeep looks for tables with rows and no statistics yet (it
    looks at every table once in the server's ``autovacuum_naptime``)."""
    public_url: str | None = None
    vehicles: int = Field(10, ge=0)
    credentials_file: Path = Path("keyfob-demo.json")
    admin_token: str | None = None
    mqtt: str | None = None
    mqtt_keepalive_s: int = Field(5, ge=1, le=3600)
    """The platform's MQTT keep-alive: a silent broker is left within 1 to 1.5 times this."""
    dispatcher_id: str | None = None
    """This dispatcher's MQTT client id is ``keyfob-dispatcher-<dispatcher_id>``; default
    ``<host name>-<slot>``, the lowest slot no other dispatcher on this host holds for the
    same broker."""
    sim_speed: float = Field(1.0, ge=0)
    sim_seed: int = 7
    sim_registry_poll_s: float = Field(5.0, gt=0)
    """How often the embedded simulator looks for vehicles added or removed meanwhile."""
    run_dispatcher: bool = True
    run_worker: bool = True
    run_worker_in_child: bool = True
    """``serve`` runs the delivery worker as a supervised child process (a second core)."""
    run_simulator: bool = True
    run_vehicles_in_child: bool = True
    """``serve`` runs the dispatcher and the simulated fleet as a supervised child process: a
    third process, for about a tenth more remotes a second and about 100 MiB more memory."""
    lean_accept: bool = True
    settle_heap: bool = True
    """Each long-running process, once started, takes what it has built out of the cycle
    collector's sight (``kit.heap``): shorter pauses and less CPU under load."""
    idempotency_ttl_s: int = Field(86_400, ge=1)
    history_days: int = Field(60, ge=1)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    vehicle: VehicleSettings = Field(default_factory=VehicleSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    oauth_issuer: str | None = None
    """``iss`` of keyfob's own tokens; default ``<public_url or http://host:port>/am/oauth2``."""
    oidc_issuer: str | None = None
    """An external identity provider whose access tokens the user face also accepts."""
    oidc_audience: str | None = None
    oidc_jwks_uri: str | None = None
    oidc_user_claim: str = "sub"
    oidc_user_field: Literal["login", "id"] = "login"
    oidc_client_claim: str = "client_id"
    oidc_realm_claim: str = "realm"
    oidc_realm: str | None = None
    oidc_scope_claim: str = "scope"
    tls_cert: Path | None = None
    """PEM certificate (chain) served on both faces; HTTPS when it and ``tls_key`` are set."""
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    """PEM bundle of the CAs whose client certificates are accepted."""
    tls_client_cert: Literal["none", "optional", "required"] = "none"

    @model_validator(mode="after")
    def _external_issuer_has_audience(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("oidc_audience is required when oidc_issuer is set")
        return self

    @model_validator(mode="after")
    def _tls_settings_agree(self) -> Settings:
        # Each of these would otherwise serve something other than what the operator meant,
        # most dangerously plain HTTP, or HTTPS that asks for no client certificate.
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        if self.tls_client_cert != "none" and self.tls_client_ca is None:
            raise ValueError(f"tls_client_cert = {self.tls_client_cert} needs tls_client_ca")
        if self.tls_client_ca is not None and self.tls_client_cert == "none":
            raise ValueError(
                "tls_client_ca is set but tls_client_cert is none: set it to optional or required"
            )
        if self.tls_client_ca is not None and not self.tls:
            raise ValueError("client certificates (tls_client_ca) need tls_cert and tls_key")
        return self

    @property
    def tls(self) -> bool:
        """Whether the API is served over HTTPS."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def root_url(self) -> str:
        """``public_url``, else where this process listens (``https`` when TLS is on)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


class SettingsFileError(Exception):
    """A settings file that is missing, unreadable or not TOML; the message names the file
    and, for a syntax error, the line and column."""


def read_settings_file(path: Path) -> dict[str, Any]:
    """The file's settings. A file named but absent is an error, not an empty file: running
    on defaults instead would serve something other than what the operator configured."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsFileError(f"settings file {path}: no such file") from None
    except IsADirectoryError:
        raise SettingsFileError(f"settings file {path}: is a directory") from None
    except PermissionError:
        raise SettingsFileError(f"settings file {path}: permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsFileError(f"settings file {path}: cannot be read ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsFileError(f"settings file {path}: {_where(str(exc), text)}") from None


def _where(message: str, text: str) -> str:
    """tomllib says ``(at end of document)`` for an error on the last line: say which."""
    lines = text.splitlines() or [""]
    end = f"(at line {len(lines)}, column {len(lines[-1]) + 1})"
    return message.replace("(at end of document)", end)


def load_settings(config_file: Path | None = None, **given: object) -> Settings:
    """Settings from, in rising priority: the TOML file, ``KEYFOB_*`` variables, ``given``.

    Raises ``SettingsFileError`` when ``config_file`` cannot be read or parsed."""
    if config_file is None:
        return Settings(**given)  # type: ignore[arg-type]
    from_file = read_settings_file(config_file)

    class FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, from_file))

    return FileSettings(**given)  # type: ignore[arg-type]
