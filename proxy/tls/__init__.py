"""The HTTPS listener's certificates: server contexts (``context.py``) and the SNI table (``certs.py``)."""
