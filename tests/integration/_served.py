"""What a lab edge serves, seen by our own TLS handshake."""

from __future__ import annotations

from acmelab.deploy import verify


def served_serial(lab, domain: str, port: int) -> str:
    """The serial number (:func:`acmelab.certificates.serial_hex` spelling) of
    the certificate the lab's edge on ``port`` serves for ``domain`` (SNI),
    validated to the lab's roots (:func:`acmelab.deploy.verify`, which raises
    DeployError if it does not validate)."""
    return verify(domain, host="127.0.0.1", port=port, root_pem=lab.roots()).serial_hex
