"""CanaryRoute + Upstream resources -> route documents: compile, object names, selectors, host claims."""
