"""The Graylane operator (Kopf): compiles CanaryRoutes + Upstreams into one route ConfigMap per route."""
