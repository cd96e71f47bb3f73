"""JWT verification for routing: algorithm allow-list, key sets, the verifier and its cache."""
