"""The compiled route document: its frozen model, the strict loader and the field checks."""
