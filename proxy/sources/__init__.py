"""Where the proxy's inputs come from: route files, route ConfigMaps, secrets, JWKS, GeoIP files."""
