"""A Python client of the ButterflyFX HTTP API, sync (:class:`ButterflyFX`) and async
(:class:`AsyncButterflyFX`), answering with the models of :mod:`butterflyfx.interface.machine`.

See docs/client.md.
"""

from .asynchronous import AsyncButterflyFX
from .calls import ROUTES
from .errors import (
    ButterflyFXError,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    StreamClosed,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from .profiles import ProfileError
from .retry import RetryPolicy
from .sync import ButterflyFX

__all__ = [
    "ROUTES",
    "AsyncButterflyFX",
    "ButterflyFX",
    "ButterflyFXError",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ProfileError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "StreamClosed",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
]
