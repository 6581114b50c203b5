"""The ``[ratelimit]`` config section: where counters live, the strategy, the tiers' limits,
and what to do with requests it cannot count."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import limits
from limits import RateLimitItem
from pydantic import Field, field_validator

from butterflyfx.core.auth import Action
from butterflyfx.core.config import MASK, StrictModel

SECTION = "ratelimit"
UNLIMITED = "unlimited"
FREE = "free"
DEFAULT_TIERS = {"free": "100/minute", "pro": "1000/minute", "enterprise": UNLIMITED}
STORAGE_SCHEMES = ("memory", "redis", "rediss")
Strategy = Literal["moving-window", "fixed-window", "sliding-window-counter"]
Policy = Literal["fail_open", "fail_closed"]
FAIL_OPEN: Policy = "fail_open"
FAIL_CLOSED: Policy = "fail_closed"


def parse_limit(text: str) -> RateLimitItem | None:
    """The limit a string such as ``"100/minute"`` states; None for ``"unlimited"``."""
    if text.strip().lower() == UNLIMITED:
        return None
    shape = 'write N/second, N/minute, N/hour or N/day (e.g. "100/minute"), or "unlimited"'
    try:
        items = limits.parse_many(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a rate limit: {shape}") from None
    if len(items) != 1:
        raise ValueError(f"{text!r} states {len(items)} limits; give one: {shape}")
    if items[0].amount < 1:
        raise ValueError(f"{text!r} allows no request at all; the least is 1 per window")
    return items[0]


def masked_url(url: str) -> str:
    """``url`` with its password, if any, replaced by asterisks: fit for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


class StorageErrorPolicy(StrictModel):
    """``[ratelimit.on_storage_error]``: per kind of request, what happens while the
    counters' storage (Redis) does not answer. ``fail_open``: the request passes uncounted;
    ``fail_closed``: it is refused with 503 and ``Retry-After``. Reads and invocations
    change no stored data, so they pass; writes and admin changes (keys, users) wait."""

    read: Policy = Field(
        default=FAIL_OPEN, description="reads; open routes and status pages by GET or HEAD"
    )
    invoke: Policy = Field(default=FAIL_OPEN, description="invoking a substrate")
    write: Policy = Field(
        default=FAIL_CLOSED, description="creating, changing, deleting; open routes by POST"
    )
    admin: Policy = Field(default=FAIL_CLOSED, description="admin routes (API keys, plugins)")

    def of(self, action: Action) -> Policy:
        policy: Policy = getattr(self, action)
        return policy

    def as_dict(self) -> dict[str, Policy]:
        return {"read": self.read, "invoke": self.invoke, "write": self.write, "admin": self.admin}


class RateLimitSettings(StrictModel):
    """The ``[ratelimit]`` section."""

    storage: str = Field(
        default="memory://",
        description='where counters live: "memory://" (this process) or "redis://host:port/db"',
    )
    strategy: Strategy = Field(
        default="moving-window", description="the limits library's counting strategy"
    )
    tiers: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TIERS),
        description="a principal's tier -> its limit; tiers left out keep their defaults",
    )
    anonymous: str = Field(
        default="60/minute",
        description="limit per client address for requests without a principal",
    )
    key_prefix: str = Field(
        default="butterflyfx",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="prefix of every counter's key in the storage",
    )
    on_storage_error: StorageErrorPolicy = Field(
        default_factory=StorageErrorPolicy,
        description="per kind of request: pass uncounted or refuse while Redis is away",
    )

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme not in STORAGE_SCHEMES or "://" not in value:
            raise ValueError(
                f'{masked_url(value)!r} is not a rate limit storage: use "memory://" or '
                '"redis://host:port/db" (e.g. "redis://127.0.0.1:6379/0")'
            )
        if scheme == "memory" and value.rstrip("/") != "memory:":
            raise ValueError('the memory storage takes no address: write "memory://"')
        return value

    @field_validator("tiers")
    @classmethod
    def _tier_limits(cls, value: dict[str, str]) -> dict[str, str]:
        for tier, text in value.items():
            if not tier.strip():
                raise ValueError("a tier needs a name")
            try:
                parse_limit(text)
            except ValueError as error:
                raise ValueError(f"tier {tier!r}: {error}") from None
        return {**DEFAULT_TIERS, **value}

    @field_validator("anonymous")
    @classmethod
    def _anonymous_limit(cls, value: str) -> str:
        parse_limit(value)
        return value

    @property
    def storage_kind(self) -> Literal["memory", "redis"]:
        return "memory" if urlsplit(self.storage).scheme.lower() == "memory" else "redis"
