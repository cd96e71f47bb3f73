"""Gateway API: the pure core (parse, attach, conditions, compile to route documents); no I/O."""
