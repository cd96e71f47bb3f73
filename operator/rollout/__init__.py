"""The rollout loop: scrape the proxies each interval, step the state machine, write status."""
