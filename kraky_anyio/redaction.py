"""Keeping secrets and long frames out of logs and error messages (one place)."""

from __future__ import annotations

from typing import Any

__all__ = ["REDACTED", "SECRET_KEYS", "redact", "shorten"]

REDACTED = "<redacted>"
#: Keys whose values are never shown, at any depth of a message.
SECRET_KEYS = frozenset({"token", "api_key", "api_secret", "secret"})


def redact(obj: Any) -> Any:
    """A copy of ``obj`` safe to log: token, key and secret values replaced."""
    if isinstance(obj, dict):
        return {k: (REDACTED if k in SECRET_KEYS else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def shorten(value: object, limit: int = 120) -> str:
    """``value`` as text for an error or log message, cut to ``limit`` characters
    (bytes are shown as their ``repr``)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
