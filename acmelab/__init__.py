"""acmelab: learn Let's Encrypt's ACME v2 (RFC 8555) by doing it.

Modules follow the course's steps: :mod:`acmelab.keys` (account and
certificate keys), :mod:`acmelab.csr`, :mod:`acmelab.jws`,
:mod:`acmelab.client` (the RFC 8555 client), :mod:`acmelab.dns` (DNS-01
providers), :mod:`acmelab.deploy` (Alibaba Cloud API Gateway, CDN, CAS),
:mod:`acmelab.pkcs12`, :mod:`acmelab.lab` (Pebble on loopback) and
:mod:`acmelab.cli` (the ``acmelab`` command).
"""

__version__ = "0.1.0"
USER_AGENT = f"acmelab/{__version__} (+RFC 8555 course client)"
