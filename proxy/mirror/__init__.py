"""Shadow traffic: copies of requests routed to stable sent to the canary in the background, and compared."""
