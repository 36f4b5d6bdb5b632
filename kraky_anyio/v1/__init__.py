"""Kraken's v1 WebSocket API, without I/O: codec, request builders,
subscription registry and the protocol object the shell drives."""
