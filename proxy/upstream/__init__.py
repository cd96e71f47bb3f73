"""The pooled HTTP/1.1 upstream client and the forwarding of one request through it."""
