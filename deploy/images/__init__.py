"""Build the repository's images without a Docker daemon (``make images``); see ``build.py``."""
