"""The commands that do I/O: ``graylane render`` and the ``kubectl graylane`` plugin."""
