"""Errors and parsers for configuration values, shared by every layer (no framework imports)."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the field."""


def fail(field: str, value: Any, allowed: str) -> None:
    """Raise ConfigError naming `field`, its `value` and what is `allowed`."""
    raise ConfigError(f"{field}={value!r} is not allowed; {allowed}")


def parse_id_ranges(spec: str, field: str = "ids") -> list[int]:
    """ "0-3,7,9-10" -> [0, 1, 2, 3, 7, 9, 10] (inclusive ranges, sorted, unique)."""
    ids: set[int] = set()
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                ids.update(range(lo, hi + 1))
            else:
                ids.add(int(part))
        except ValueError:
            fail(field, spec, "expected comma-separated ids or inclusive ranges such as '0-39' or '0-9,20'")
    if not ids:
        fail(field, spec, "must name at least one id")
    if min(ids) < 0:
        fail(field, spec, "ids must be >= 0")
    return sorted(ids)
