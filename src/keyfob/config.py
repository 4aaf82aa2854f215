"""Settings, built once at the entry point and passed down (never read at import time).

Every setting has a ``KEYFOB_`` environment variable (nested groups use ``__``), and
``settings.example.toml`` lists them all with their defaults; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class RateLimitSettings(BaseModel):
    """Per-partner budgets (§9.1): a sliding day window and a one-second burst window."""

    day: int = Field(100_000, ge=1)
    burst: int = Field(100, ge=1)


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEYFOB_", env_nested_delimiter="__", extra="forbid"
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    db: str = "sqlite:///keyfob.db"
    db_pool_size: int = Field(10, ge=1)
    public_url: str | None = None
    vehicles: int = Field(10, ge=0)
    credentials_file: Path = Path("keyfob-demo.json")
    admin_token: str | None = None
    mqtt: str | None = None
    sim_speed: float = Field(1.0, ge=0)
    sim_seed: int = 7
    run_dispatcher: bool = True
    run_worker: bool = True
    run_simulator: bool = True
    lean_accept: bool = True
    idempotency_ttl_s: int = Field(86_400, ge=1)
    history_days: int = Field(60, ge=1)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    vehicle: VehicleSettings = Field(default_factory=VehicleSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)


def load_settings(config_file: Path | None = None, **given: object) -> Settings:
    """Settings from, in rising priority: the TOML file, ``KEYFOB_*`` variables, ``given``."""
    if config_file is None:
        return Settings(**given)  # type: ignore[arg-type]

    class FileSettings(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    return FileSettings(**given)  # type: ignore[arg-type]
