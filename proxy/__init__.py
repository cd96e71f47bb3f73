"""The Graylane data plane: an aiohttp reverse proxy routing each request to a route's stable or canary."""
