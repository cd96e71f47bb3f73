"""TLS certificates for the proxy's HTTPS listener: parsed and checked once, names matched by RFC 6125.

Pure (no sockets, no ``ssl``): :mod:`graylane.tls.certificate` turns a ``kubernetes.io/tls`` Secret's
``tls.crt`` and ``tls.key`` into a :class:`~graylane.tls.certificate.Certificate` or one
:class:`~graylane.tls.certificate.CertificateError` listing every problem with its field path;
:mod:`graylane.tls.hostnames` says which host names a certificate covers. The operator (before it mirrors a
Secret) and the proxy (before it serves one) call the same code.
"""
