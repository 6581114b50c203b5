"""When to send a request again, and after how long: shared by both clients.

A request is sent again, at most ``retries`` times and never past ``deadline`` seconds
after the first try, when

- the answer is 429: the rate limiter refused it before anything ran, so any request
  (an invoke too) may be repeated;
- the answer is 503, or the request timed out or lost its connection after being sent,
  and the request is *repeatable* (:data:`~.calls.REPEATABLE`): reads, deletes, metadata
  patches, and creates, which are content-addressed here (the same expression is the same
  substrate; a second create answers 200 with the stored one). Invoke is not repeatable
  (a second run would count twice in the invocation totals), nor is creating a key;
- the connection could not be opened at all: nothing was sent, so anything may be.

The wait is ``backoff * 2 ** attempt`` seconds (at most ``max_delay``), or the server's
``Retry-After`` when that is longer; a wait that would end past the deadline is not
taken, and the last answer (or error) stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .calls import Call
from .errors import retry_after

NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff: float = 0.25
    max_delay: float = 30.0
    deadline: float = 60.0

    def delay(
        self,
        request: Call,
        attempt: int,
        elapsed: float,
        response: httpx.Response | None = None,
        error: Exception | None = None,
    ) -> float | None:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0), or None:
        do not try again. ``elapsed``: seconds since the first try began."""
        if attempt >= self.retries or not self._worth_repeating(request, response, error):
            return None
        wait = min(self.backoff * 2**attempt, self.max_delay)
        asked = retry_after(response) if response is not None else None
        if asked is not None:
            wait = max(wait, asked)
        return wait if elapsed + wait <= self.deadline else None

    @staticmethod
    def _worth_repeating(
        request: Call, response: httpx.Response | None, error: Exception | None
    ) -> bool:
        if error is not None:
            return isinstance(error, NOTHING_SENT) or (
                request.repeatable and isinstance(error, httpx.TransportError)
            )
        if response is None:
            return False
        if response.status_code == 429:
            return True
        return response.status_code == 503 and request.repeatable
