"""Exceptions shared by both servers and the code below them (interpreted: mypyc cannot compile a class
that inherits a builtin exception type)."""

from __future__ import annotations


class ClientGone(ConnectionResetError):
    """The client connection closed while its request was being handled."""
