"""The client-facing HTTP servers: the fast httptools server and the aiohttp reference server."""
