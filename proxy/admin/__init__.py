"""The admin port: health, readiness, metrics, routes and explain, merged across workers."""
