"""pytest plugin (registered as an entry point): fixtures for testing bots
against the built-in fake exchange. Imports nothing heavy until used."""

from __future__ import annotations
