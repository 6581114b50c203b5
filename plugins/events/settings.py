"""The ``[events]`` config section: how far a subscriber may fall behind, and Redis."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from butterflyfx.core.config import MASK, StrictModel

SECTION = "events"
REDIS_SCHEMES = ("redis", "rediss", "unix")
SHARED_REDIS = "redis://127.0.0.1:6379/0"
CHANNEL = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def masked_url(url: str) -> str:
    """``url`` with its password, if any, replaced by asterisks: fit for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


class EventsSettings(StrictModel):
    """The ``[events]`` section."""

    buffer: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="events queued for one subscriber; one more and it is dropped (close 1008)",
    )
    max_subscribers: int = Field(
        default=1000,
        ge=1,
        description="open event streams per worker; more are refused with 503",
    )
    redis: str | None = Field(
        default=None,
        description="Redis URL relaying events between workers; unset: each worker's stay in it",
    )
    channel: str = Field(
        default="butterflyfx:events",
        description="the Redis pub/sub channel every worker publishes to and listens on",
    )
    relay_buffer: int = Field(
        default=10_000,
        ge=1,
        description="events waiting to be published to Redis; beyond it they stay local",
    )

    @field_validator("redis")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" not in value or urlsplit(value).scheme.lower() not in REDIS_SCHEMES:
            raise ValueError(
                f'{masked_url(value)!r} is not a Redis URL: write "redis://host:port/db" '
                f'(e.g. "{SHARED_REDIS}"), "rediss://..." or "unix:///path/to/redis.sock"'
            )
        return value

    @field_validator("channel")
    @classmethod
    def _channel_name(cls, value: str) -> str:
        if not CHANNEL.fullmatch(value):
            raise ValueError("1 to 128 letters, digits, '_', '.', ':' or '-'")
        return value
