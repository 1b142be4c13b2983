"""Shared Pydantic base classes: strict inputs (unknown fields refused) and ORM-readable outputs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Input(BaseModel):
    """A request body: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    """A response body read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)
