"""The ``[static]`` config section: which folder is served, its index file, how long to cache."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from butterflyfx.core.config import StrictModel

SECTION = "static"
YEAR = 365 * 24 * 3600


class StaticSettings(StrictModel):
    """The ``[static]`` section."""

    directory: Path | None = Field(
        default=None,
        description="the folder whose files are served at /; unset serves no file at all",
    )
    index: str = Field(
        default="index.html",
        description="the file a folder's URL (ending in /) serves; empty: folders are 404",
    )
    cache_seconds: int = Field(
        default=0,
        ge=0,
        le=YEAR,
        description="Cache-Control max-age; 0 sends no-cache: revalidate, 304 when unchanged",
    )

    @field_validator("index")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if value and ("/" in value or "\\" in value or "\x00" in value or value.startswith(".")):
            raise ValueError(
                f"{value!r} is not a plain file name: no slashes, and no leading dot "
                '(hidden files are never served); "" serves no index'
            )
        return value
