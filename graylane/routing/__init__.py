"""The per-request decision: request view, matchers, route table, sticky split, client IP, country."""
