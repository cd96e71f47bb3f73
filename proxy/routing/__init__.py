"""Per request: the route table being served, client address, JWT claims, and the handler."""
