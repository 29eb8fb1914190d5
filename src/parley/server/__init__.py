"""The transport: HTTP, static files and the WebSocket on one aiohttp port."""
