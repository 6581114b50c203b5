"""What every plugin over a SQL server needs and no driver gives: a plain schema name
checked and quoted, and the server named in a message without its password.

Pure text handling (no driver is imported): storage.postgres, auth.apikey and auth.jwt
each keep their own connection pools, and share these.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .config import hide_url_passwords

# A name PostgreSQL takes unquoted: letters, digits and _, at most 63 characters.
PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
DSN_MASK = "***"


def quoted(name: str) -> str:
    """``name`` as a PostgreSQL identifier (names are checked with PLAIN_NAME first)."""
    return '"' + name.replace('"', '""') + '"'


def masked_dsn(text: str) -> str:
    """``text`` (a DSN, or a driver's message quoting one) with every URL password
    replaced by ``***``."""
    return hide_url_passwords(text, DSN_MASK)


def server_place(dsn: str) -> str:
    """``host:port/database`` of a PostgreSQL DSN, for messages; the masked DSN when it
    does not parse."""
    try:
        parts = urlsplit(dsn)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"
    except ValueError:
        return masked_dsn(dsn)
