"""Kraken v1 frames in and out: JSON with exact decimals, and the endpoints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["ENVIRONMENTS", "decode", "encode", "json_default"]

ENVIRONMENTS: dict[str, str] = {
    "production": "wss://ws.kraken.com",
    "production-auth": "wss://ws-auth.kraken.com",
    "beta": "wss://beta-ws.kraken.com",
    "beta-auth": "wss://beta-ws-auth.kraken.com",
}

# Built once: json.loads(text, parse_float=...) builds a new decoder per call,
# which cost as much as decoding a Kraken message itself.
decode_str = json.JSONDecoder(parse_float=Decimal).decode


def decode(text: str | bytes) -> Any:
    """Decode a JSON frame; JSON numbers with a fraction become ``Decimal``.
    Raises ``ValueError`` for anything that is not JSON."""
    if not isinstance(text, str):
        text = text.decode()  # UnicodeDecodeError is a ValueError
    return decode_str(text)


def json_default(obj: object) -> Any:
    """``json.dumps(default=...)`` for Kraken: ``Decimal`` as a plain decimal string."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def encode(message: Mapping[str, Any]) -> str:
    """Encode a request compactly; ``Decimal`` becomes a plain decimal string."""
    return json.dumps(message, separators=(",", ":"), default=json_default)
