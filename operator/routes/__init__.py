"""The CanaryRoute controller: its own informer, an index of who depends on what, one deduplicated queue."""
