"""Progressive rollout: spec, status, the pure state machine, analysis figures and verdicts."""
