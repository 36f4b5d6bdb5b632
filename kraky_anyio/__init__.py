"""kraky_anyio: a Kraken Spot WebSocket (v1) client for trio and asyncio."""
