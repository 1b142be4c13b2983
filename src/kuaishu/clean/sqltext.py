"""Small helpers for SQL text built in this package: literals are escaped here, nowhere else."""

from __future__ import annotations

import math


def literal(text: str) -> str:
    """A DuckDB string literal (single quotes doubled; backslashes are not escapes in DuckDB)."""
    return "'" + text.replace("'", "''") + "'"


def number(value: float) -> str:
    """A numeric literal; refuses NaN and infinities, which have no literal form."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return repr(int(value)) if isinstance(value, int) else repr(float(value))
